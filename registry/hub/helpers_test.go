package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"

	"github.com/opendao/dao/registry/server"
)

// testHub is a hub with a fixture of projects and accounts, served on a loopback
// listener:
//
//   - team-a (private): alice developer, gina guest, ada admin, mo maintainer
//   - team-b (private): bob developer
//   - library (public): no members
//   - root: a system admin
type testHub struct {
	t    testing.TB
	h    *Hub
	root string
	srv  *httptest.Server
	url  string
	host string
}

// The fixture's password, the same for every user.
const password = "correct-horse"

func newTestHub(t testing.TB, edit ...func(*Config)) *testHub {
	t.Helper()
	th := openTestHub(t, t.TempDir(), edit...)
	ctx := context.Background()
	for _, u := range []User{{Name: "root", SystemAdmin: true}, {Name: "alice"}, {Name: "bob"}, {Name: "gina"}, {Name: "ada"}, {Name: "mo"}} {
		if err := th.h.CreateUser(ctx, u, password); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []Project{
		{Name: "team-a", Members: map[string]Role{"alice": RoleDeveloper, "gina": RoleGuest, "ada": RoleAdmin, "mo": RoleMaintainer}},
		{Name: "team-b", Members: map[string]Role{"bob": RoleDeveloper}},
		{Name: "library", Public: true},
	} {
		if err := th.h.CreateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	return th
}

// openTestHub opens a hub on root, as a restarted process would.
func openTestHub(t testing.TB, root string, edit ...func(*Config)) *testHub {
	t.Helper()
	cfg := Config{Root: root, BcryptCost: bcrypt.MinCost}
	for _, e := range edit {
		e(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler())
	th := &testHub{t: t, h: h, root: root, srv: srv, url: srv.URL, host: strings.TrimPrefix(srv.URL, "http://")}
	t.Cleanup(th.close)
	return th
}

func (th *testHub) close() {
	if th.srv != nil {
		th.srv.Close()
		th.h.Close()
		th.srv = nil
	}
}

// answer is an HTTP answer read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// code returns the first spec error code of an error answer.
func (a answer) code() string {
	var b struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if json.Unmarshal(a.body, &b) != nil || len(b.Errors) == 0 {
		return ""
	}
	return b.Errors[0].Code
}

// message returns the first spec error message.
func (a answer) message() string {
	var b struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if json.Unmarshal(a.body, &b) != nil || len(b.Errors) == 0 {
		return ""
	}
	return b.Errors[0].Message
}

func (a answer) want(t testing.TB, status int, code string) answer {
	t.Helper()
	if a.status != status || (code != "" && a.code() != code) {
		t.Fatalf("got %d %q, want %d %q: %s", a.status, a.code(), status, code, a.body)
	}
	return a
}

// auth is how a request authenticates: "" for none, "basic user:pass", or a token.
type auth string

func basic(user, pass string) auth { return auth("basic " + user + ":" + pass) }
func bearer(tok string) auth       { return auth("bearer " + tok) }

func (a auth) set(req *http.Request) {
	switch {
	case strings.HasPrefix(string(a), "basic "):
		u, p, _ := strings.Cut(strings.TrimPrefix(string(a), "basic "), ":")
		req.SetBasicAuth(u, p)
	case strings.HasPrefix(string(a), "bearer "):
		req.Header.Set("Authorization", "Bearer "+strings.TrimPrefix(string(a), "bearer "))
	}
}

// do sends a request to the hub; header is pairs of names and values.
func (th *testHub) do(a auth, method, target string, body []byte, header ...string) answer {
	th.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, th.url+target, r)
	if err != nil {
		th.t.Fatal(err)
	}
	a.set(req)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	res, err := th.srv.Client().Do(req)
	if err != nil {
		th.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, body: b}
}

// tokenAnswer is the token endpoint's answer.
type tokenAnswer struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token"`
}

// token asks the token endpoint for scopes, as a (basic auth or none), and fails the test
// unless it answers 200.
func (th *testHub) token(a auth, scopes ...string) string {
	th.t.Helper()
	q := url.Values{"service": {th.h.cfg.Service}, "scope": scopes}
	ans := th.do(a, "GET", "/token?"+q.Encode(), nil).want(th.t, http.StatusOK, "")
	var ta tokenAnswer
	if err := json.Unmarshal(ans.body, &ta); err != nil || ta.Token == "" || ta.Token != ta.AccessToken {
		th.t.Fatalf("token answer %s: %v", ans.body, err)
	}
	return ta.Token
}

// granted returns the access claim of a token of the hub, without verifying it.
func (th *testHub) granted(tok string) []accessEntry {
	th.t.Helper()
	c, err := th.h.signer.verify(tok, false)
	if err != nil {
		th.t.Fatal(err)
	}
	return c.Access
}

// pushBlob pushes data to repo monolithically as a.
func (th *testHub) pushBlob(a auth, repo string, data []byte) answer {
	th.t.Helper()
	d := digest.FromBytes(data)
	return th.do(a, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), data, "Content-Type", "application/octet-stream")
}

// image is a small image's blobs and manifest.
type image struct {
	config, layer, manifest []byte
}

func (i image) digest() digest.Digest { return digest.FromBytes(i.manifest) }

// newImage makes an image with a layer of data, the manifest annotations and the config
// labels given.
func newImage(data []byte, annotations, labels map[string]string) image {
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "config": map[string]any{"Labels": labels}})
	m := ocispec.Manifest{
		MediaType:   ocispec.MediaTypeImageManifest,
		Config:      ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		Layers:      []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(data), Size: int64(len(data))}},
		Annotations: annotations,
	}
	m.SchemaVersion = 2
	raw, _ := json.Marshal(m)
	return image{config: cfg, layer: data, manifest: raw}
}

// pushImage pushes an image to repo:tag as a, and fails unless every step succeeds.
func (th *testHub) pushImage(a auth, repo, tag string, img image) {
	th.t.Helper()
	th.pushBlob(a, repo, img.config).want(th.t, http.StatusCreated, "")
	th.pushBlob(a, repo, img.layer).want(th.t, http.StatusCreated, "")
	th.do(a, "PUT", "/v2/"+repo+"/manifests/"+tag, img.manifest, "Content-Type", ocispec.MediaTypeImageManifest).want(th.t, http.StatusCreated, "")
}

func digestFromBytes(b []byte) digest.Digest { return digest.FromBytes(b) }

// eventPush is a push event of a blob or manifest of size bytes.
func eventPush(repo, kind string, size int64) server.Event {
	return server.Event{Action: server.EventPush, Kind: kind, Repository: repo, Digest: digest.FromString(repo), Size: size}
}

// listenAndServe runs ListenAndServe(cfg) until stop is called or the test ends, and
// returns the address it serves on; stop says how it ended.
func listenAndServe(t *testing.T, cfg FileConfig) (addr net.Addr, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- ListenAndServe(ctx, cfg, func(a net.Addr) { addrc <- a }) }()
	select {
	case addr = <-addrc:
	case err := <-done:
		cancel()
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("the hub did not start")
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(15 * time.Second):
				err = errors.New("the hub did not stop")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return addr, stop
}
