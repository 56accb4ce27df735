package remote

import "testing"

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.0.0.1:5000": true, "127.1.2.3:80": true, "[::1]:5000": true, "::1": true,
		"localhost": true, "localhost:5000": true, "LocalHost:5000": true,
		"10.0.0.1:5000": false, "localhost.example:5000": false, "r.example": false, "[::2]:5000": false, "128.0.0.1": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestLoopbackScheme checks the choice of containerd's resolver for a loopback registry
// without settings, by its port.
func TestLoopbackScheme(t *testing.T) {
	type choice struct {
		scheme         string
		skip, fallback bool
	}
	for host, want := range map[string]choice{
		"localhost":      {"https", true, false},
		"127.0.0.1:443":  {"https", true, false},
		"127.0.0.1:80":   {"http", false, false},
		"127.0.0.1:5000": {"https", true, true},
		"[::1]:5000":     {"https", true, true},
	} {
		s, skip, fb := loopbackScheme(host)
		if got := (choice{s, skip, fb}); got != want {
			t.Errorf("loopbackScheme(%q) = %+v, want %+v", host, got, want)
		}
	}
}
