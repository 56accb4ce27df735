package testutil

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// conformanceModule returns the directory of the module that pins the OCI conformance
// suite (internal/conformance).
func conformanceModule(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testutil: cannot tell where the conformance module is")
	}
	return filepath.Join(filepath.Dir(file), "..", "conformance")
}

// buildOCIConformance builds the suite through the Go module proxy, once per version of
// its go.mod and go.sum: the binary is kept under the temporary directory between runs,
// and shared by every test that runs it.
func buildOCIConformance(t testing.TB) string {
	t.Helper()
	mod := conformanceModule(t)
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join(mod, f))
		if err != nil {
			t.Fatalf("conformance module: %v", err)
		}
		h.Write(data)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	bin := filepath.Join(os.TempDir(), "dao-oci-conformance-"+sum[:16])
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building the conformance suite needs go on PATH: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tmp, err := os.CreateTemp(os.TempDir(), "dao-oci-conformance-*.tmp")
	if err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", tmp.Name(), "github.com/opencontainers/distribution-spec/conformance")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp.Name())
		t.Fatalf("building the conformance suite: %v\n%s", err, out)
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		os.Remove(tmp.Name())
		t.Fatal(err)
	}
	return bin
}

// ConformanceResult is what a run of the OCI conformance suite counted.
type ConformanceResult struct {
	Tests, Failures, Errors, Skipped, Disabled int
}

// OCIConformance runs the OCI distribution-spec conformance suite (version 1.1) against
// the plain-HTTP registry at host (host:port), every API and data area on but the sparse
// one unless sparse, with the extra environment (OCI_USERNAME=..., OCI_PASSWORD=...). Each
// failed case is an error of t, and a run with any failure, or fewer than 900 tests, fails
// t. The suite is built once through the Go module proxy from internal/conformance.
func OCIConformance(t *testing.T, host string, sparse bool, extraEnv ...string) ConformanceResult {
	t.Helper()
	bin := buildOCIConformance(t)
	results := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = results
	sp := "false"
	if sparse {
		sp = "true"
	}
	cmd.Env = append(os.Environ(),
		"OCI_REGISTRY="+host, "OCI_TLS=disabled", "OCI_VERSION=1.1",
		"OCI_REPO1=conformance/repo1", "OCI_REPO2=conformance/repo2",
		"OCI_RESULTS_DIR="+results, "OCI_LOG=warn",
		"OCI_API_PULL=true", "OCI_API_PUSH=true",
		"OCI_API_BLOBS_ATOMIC=true", "OCI_API_BLOBS_DELETE=true", "OCI_API_BLOBS_DIGEST_HEADER=true",
		"OCI_API_BLOBS_MOUNT_ANONYMOUS=true", "OCI_API_BLOBS_UPLOAD_CANCEL=true",
		"OCI_API_MANIFESTS_ATOMIC=true", "OCI_API_MANIFESTS_DELETE=true",
		"OCI_API_MANIFESTS_DIGEST_HEADER=true", "OCI_API_MANIFESTS_TAG_PARAM=true",
		"OCI_API_TAGS_ATOMIC=true", "OCI_API_TAGS_DELETE=true", "OCI_API_TAGS_LIST=true",
		"OCI_API_REFERRER=true",
		"OCI_DATA_IMAGE=true", "OCI_DATA_INDEX=true", "OCI_DATA_INDEX_LIST=true",
		"OCI_DATA_SPARSE="+sp, "OCI_DATA_ARTIFACT=true", "OCI_DATA_SUBJECT=true",
		"OCI_DATA_SUBJECT_MISSING=true", "OCI_DATA_ARTIFACT_LIST=true", "OCI_DATA_SUBJECT_LIST=true",
		"OCI_DATA_DATA_FIELD=true", "OCI_DATA_NONDISTRIBUTABLE=true", "OCI_DATA_CUSTOM_FIELDS=true",
		"OCI_DATA_NO_LAYERS=true", "OCI_DATA_EMPTY_BLOB=true", "OCI_DATA_SHA512=true",
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	out, runErr := cmd.CombinedOutput()
	data, err := os.ReadFile(filepath.Join(results, "junit.xml"))
	if err != nil {
		t.Fatalf("the conformance suite wrote no junit.xml (%v): %v\n%s", runErr, err, out)
	}
	var j struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Errors   int `xml:"errors,attr"`
			Skipped  int `xml:"skipped,attr"`
			Disabled int `xml:"disabled,attr"`
			Cases    []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
				Error   *struct{} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &j); err != nil {
		t.Fatalf("conformance junit.xml: %v", err)
	}
	var r ConformanceResult
	for _, s := range j.Suites {
		r.Tests += s.Tests
		r.Failures += s.Failures
		r.Errors += s.Errors
		r.Skipped += s.Skipped
		r.Disabled += s.Disabled
		for _, c := range s.Cases {
			if c.Failure != nil || c.Error != nil {
				t.Errorf("conformance: %s failed", c.Name)
			}
		}
	}
	t.Logf("conformance: %d tests, %d failures, %d errors, %d skipped, %d disabled", r.Tests, r.Failures, r.Errors, r.Skipped, r.Disabled)
	if r.Failures != 0 || r.Errors != 0 || runErr != nil {
		t.Fatalf("conformance: %d failures, %d errors (exit: %v)\n%s", r.Failures, r.Errors, runErr, out)
	}
	if r.Tests < 900 {
		t.Fatalf("conformance: only %d tests ran\n%s", r.Tests, out)
	}
	return r
}
