package testutil_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opendao/dao/internal/testutil"
)

func TestRegistryAnswersWithBasicAuth(t *testing.T) {
	r := testutil.StartRegistry(t, testutil.RegistryBasicAuth())
	for _, tc := range []struct {
		name     string
		password string
		want     int
	}{
		{"anonymous", "", http.StatusUnauthorized},
		{"wrong password", "nope", http.StatusUnauthorized},
		{"right password", testutil.RegistryPassword, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://"+r.Addr+"/v2/", nil)
			if tc.password != "" {
				req.SetBasicAuth(testutil.RegistryUser, tc.password)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := resp.StatusCode; got != tc.want {
				t.Errorf("GET /v2/: got %d, want %d (%s)", got, tc.want, body)
			}
			if tc.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("challenge %q, want Basic", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
}
