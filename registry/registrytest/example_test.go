package registrytest_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao"
	"github.com/opendao/dao/registry/registrytest"
)

// Push a blob and a manifest that refers to it with plain net/http, and read them back.
func Example() {
	reg, err := registrytest.New()
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(reg)
	defer srv.Close()

	put := func(method, path, ct string, body []byte) *http.Response {
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		return resp
	}
	config := []byte(`{}`)
	cd := digest.FromBytes(config)
	resp := put("POST", "/v2/app/blobs/uploads/?digest="+cd.String(), "application/octet-stream", config)
	fmt.Println("blob:", resp.Status, resp.Header.Get("Location"))

	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[]}`,
		ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, cd, len(config))
	resp = put("PUT", "/v2/app/manifests/1", ocispec.MediaTypeImageManifest, []byte(manifest))
	fmt.Println("manifest:", resp.Status, resp.Header.Get("Docker-Content-Digest") == digest.FromString(manifest).String())

	get, err := http.Get(srv.URL + "/v2/app/manifests/1")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(get.Body)
	get.Body.Close()
	fmt.Println("read back:", get.Status, get.Header.Get("Content-Type"), string(body) == manifest)

	missing, _ := http.Get(srv.URL + "/v2/app/manifests/2")
	body, _ = io.ReadAll(missing.Body)
	missing.Body.Close()
	fmt.Println("missing:", missing.Status, strings.TrimSpace(string(body)))
	// Output:
	// blob: 201 Created /v2/app/blobs/sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a
	// manifest: 201 Created true
	// read back: 200 OK application/vnd.oci.image.manifest.v1+json true
	// missing: 404 Not Found {"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest 2 unknown to repository app"}]}
}

// A FaultProxy in front of a Registry answers the first request for a blob with a 503; the
// second gets the blob.
func ExampleFaultProxy() {
	reg, err := registrytest.New()
	if err != nil {
		panic(err)
	}
	proxy := registrytest.NewFaultProxy(reg)
	srv := httptest.NewServer(proxy)
	defer srv.Close()
	defer proxy.Close()

	blob := []byte("hello")
	d := digest.FromBytes(blob)
	resp, err := http.Post(srv.URL+"/v2/app/blobs/uploads/?digest="+d.String(), "application/octet-stream", bytes.NewReader(blob))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()

	err = proxy.Add(registrytest.Fault{Kind: registrytest.Respond, StatusCode: http.StatusServiceUnavailable, Method: "GET", Path: d.String()})
	if err != nil {
		panic(err)
	}
	for range 2 {
		resp, err := http.Get(srv.URL + "/v2/app/blobs/" + d.String())
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Status, len(body) == len(blob) && string(body) == "hello")
	}
	fmt.Println(proxy.Count("GET", "/blobs/"), "GETs of blobs")
	// Output:
	// 503 Service Unavailable false
	// 200 OK true
	// 2 GETs of blobs
}

// A registry that wants tokens, and the token server that gives them: an anonymous request
// is challenged, and a token of the server for alice lets her pull.
func ExampleNewTokenServer() {
	ts, err := registrytest.NewTokenServer(registrytest.WithUser("alice", "secret"))
	if err != nil {
		panic(err)
	}
	tokens := httptest.NewServer(ts)
	defer tokens.Close()
	reg, err := registrytest.New(registrytest.WithTokenAuth(tokens.URL+"/token", ts))
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(reg)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/v2/app/tags/list")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	fmt.Println(strings.Replace(resp.Header.Get("WWW-Authenticate"), tokens.URL, "<tokens>", 1))

	req, _ := http.NewRequest("GET", tokens.URL+"/token?service="+ts.Service()+"&scope=repository:app:pull", nil)
	req.SetBasicAuth("alice", "secret")
	tr, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	var answer struct{ Token string }
	_ = jsonDecode(tr.Body, &answer)
	tr.Body.Close()

	req, _ = http.NewRequest("GET", srv.URL+"/v2/app/tags/list", nil)
	req.Header.Set("Authorization", "Bearer "+answer.Token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status, "(with a token: the repository does not exist)")
	// Output:
	// 401 Unauthorized
	// Bearer realm="<tokens>/token",service="registrytest",scope="repository:app:pull"
	// 404 Not Found (with a token: the repository does not exist)
}

// New refuses a bad option with an error that names it and is of class dao.ErrInvalid (and
// so errdefs' InvalidArgument); so does NewTokenServer, and FaultProxy.Add a bad fault.
func ExampleNew_invalidOption() {
	_, err := registrytest.New(registrytest.WithMaxBlobSize(0))
	fmt.Println(err)
	fmt.Println(errors.Is(err, registrytest.ErrInvalidOption), errors.Is(err, dao.ErrInvalid), errdefs.IsInvalidArgument(err))

	proxy := registrytest.NewFaultProxy(http.NotFoundHandler())
	defer proxy.Close()
	err = proxy.Add(registrytest.Fault{Kind: registrytest.Slow}, registrytest.Fault{Kind: registrytest.Cut, At: -1})
	fmt.Println(err)
	fmt.Println(errors.Is(err, registrytest.ErrInvalidFault))
	// Output:
	// registrytest: invalid option: WithMaxBlobSize: 0 is not positive
	// true true true
	// fault 0: registrytest: invalid fault: slow: BytesPerSecond 0 is not positive; fault 1: registrytest: invalid fault: cut: negative At -1
	// true
}
