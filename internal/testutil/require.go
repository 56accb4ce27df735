package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// EnvRequire names the environment variable that turns a missing integration dependency from a
// skip into a failure.
const EnvRequire = "DAO_REQUIRE_INTEGRATION"

// Required reports whether integration dependencies are required (DAO_REQUIRE_INTEGRATION is
// set and not "0").
func Required() bool {
	v := os.Getenv(EnvRequire)
	return v != "" && v != "0"
}

// RequireIntegration checks that the test runs as root and that every named program is on
// PATH. When one is missing it fails the test if Required, and skips it otherwise.
func RequireIntegration(t testing.TB, programs ...string) {
	t.Helper()
	if testing.Short() && !Required() {
		t.Skip("integration test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		missing(t, "integration test needs root")
	}
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			missing(t, "integration test needs "+p+" on PATH (make test installs it)")
		}
	}
}

func missing(t testing.TB, why string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s; %s is set, so this is a failure", why, EnvRequire)
	}
	t.Skipf("%s; set %s=1 to make this a failure", why, EnvRequire)
}
