package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/server"
)

// conformanceModule is the module that pins the OCI conformance suite.
const conformanceModule = "../../internal/conformance"

// buildConformance builds the suite, once per version of its go.mod and go.sum, under
// the temporary directory, as registry/server's test does (and shares its binary).
func buildConformance(t *testing.T) string {
	t.Helper()
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join(conformanceModule, f))
		if err != nil {
			t.Fatalf("conformance module: %v", err)
		}
		h.Write(data)
	}
	bin := filepath.Join(os.TempDir(), "dao-oci-conformance-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tmp := bin + ".tmp-hub"
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, "github.com/opencontainers/distribution-spec/conformance")
	cmd.Dir = conformanceModule
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		t.Fatalf("building the conformance suite: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestConformance runs the OCI conformance suite, every area on, through the hub with
// token auth: as a maintainer of the project "conformance", whose client follows the
// Bearer challenges to the token endpoint. Nothing may fail. The sparse area runs in a
// second pass against a hub whose server is made WithSparse.
func TestConformance(t *testing.T) {
	testutil.RequireIntegration(t, "go")
	bin := buildConformance(t)
	for _, pass := range []struct {
		name   string
		sparse bool
	}{{"default", false}, {"sparse", true}} {
		t.Run(pass.name, func(t *testing.T) {
			th := newTestHub(t, func(c *Config) { c.ServerOptions = []server.Option{server.WithSparse(pass.sparse)} })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if err := th.h.CreateUser(ctx, User{Name: "conf"}, password); err != nil {
				t.Fatal(err)
			}
			if err := th.h.CreateProject(ctx, Project{Name: "conformance", Members: map[string]Role{"conf": RoleMaintainer}}); err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			hs := httptest.NewServer(rec.wrap(th.h.Handler()))
			t.Cleanup(hs.Close)
			u, _ := url.Parse(hs.URL)
			results := t.TempDir()
			cmd := exec.CommandContext(ctx, bin)
			cmd.Dir = results
			sparse := "false"
			if pass.sparse {
				sparse = "true"
			}
			cmd.Env = append(os.Environ(),
				"OCI_REGISTRY="+u.Host, "OCI_TLS=disabled", "OCI_VERSION=1.1",
				"OCI_REPO1=conformance/repo1", "OCI_REPO2=conformance/repo2",
				"OCI_USERNAME=conf", "OCI_PASSWORD="+password,
				"OCI_RESULTS_DIR="+results, "OCI_LOG=warn",
				"OCI_API_PULL=true", "OCI_API_PUSH=true",
				"OCI_API_BLOBS_ATOMIC=true", "OCI_API_BLOBS_DELETE=true", "OCI_API_BLOBS_DIGEST_HEADER=true",
				"OCI_API_BLOBS_MOUNT_ANONYMOUS=true", "OCI_API_BLOBS_UPLOAD_CANCEL=true",
				"OCI_API_MANIFESTS_ATOMIC=true", "OCI_API_MANIFESTS_DELETE=true",
				"OCI_API_MANIFESTS_DIGEST_HEADER=true", "OCI_API_MANIFESTS_TAG_PARAM=true",
				"OCI_API_TAGS_ATOMIC=true", "OCI_API_TAGS_DELETE=true", "OCI_API_TAGS_LIST=true",
				"OCI_API_REFERRER=true",
				"OCI_DATA_IMAGE=true", "OCI_DATA_INDEX=true", "OCI_DATA_INDEX_LIST=true",
				"OCI_DATA_SPARSE="+sparse, "OCI_DATA_ARTIFACT=true", "OCI_DATA_SUBJECT=true",
				"OCI_DATA_SUBJECT_MISSING=true", "OCI_DATA_ARTIFACT_LIST=true", "OCI_DATA_SUBJECT_LIST=true",
				"OCI_DATA_DATA_FIELD=true", "OCI_DATA_NONDISTRIBUTABLE=true", "OCI_DATA_CUSTOM_FIELDS=true",
				"OCI_DATA_NO_LAYERS=true", "OCI_DATA_EMPTY_BLOB=true", "OCI_DATA_SHA512=true",
			)
			out, runErr := cmd.CombinedOutput()
			data, err := os.ReadFile(filepath.Join(results, "junit.xml"))
			if err != nil {
				t.Fatalf("the suite wrote no junit.xml (%v): %v\n%s", runErr, err, out)
			}
			var j struct {
				Suites []struct {
					Tests    int `xml:"tests,attr"`
					Failures int `xml:"failures,attr"`
					Errors   int `xml:"errors,attr"`
					Cases    []struct {
						Name    string    `xml:"name,attr"`
						Failure *struct{} `xml:"failure"`
						Error   *struct{} `xml:"error"`
					} `xml:"testcase"`
				} `xml:"testsuite"`
			}
			if err := xml.Unmarshal(data, &j); err != nil {
				t.Fatalf("junit.xml: %v", err)
			}
			var tests, failures int
			for _, s := range j.Suites {
				tests += s.Tests
				failures += s.Failures + s.Errors
				for _, c := range s.Cases {
					if c.Failure != nil || c.Error != nil {
						t.Errorf("conformance: %s failed", c.Name)
					}
				}
			}
			rec.mu.Lock()
			t.Logf("conformance through the hub (%s): %d tests, %d failures; %d token requests, %d requests with a token, %d with basic auth",
				pass.name, tests, failures, rec.tokens, rec.bearerOnV2, rec.basicOnV2)
			if rec.tokens == 0 {
				t.Error("the suite fetched no token")
			}
			rec.mu.Unlock()
			if failures != 0 || runErr != nil {
				t.Fatalf("conformance: %d failures (exit: %v)\n%s", failures, runErr, out)
			}
			if tests < 900 {
				t.Fatalf("conformance: only %d tests ran\n%s", tests, out)
			}
		})
	}
}
