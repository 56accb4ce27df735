// Package registrytest is a registry for tests: an in-memory OCI registry, a Bearer token
// server and a fault-injecting proxy, each an http.Handler to serve with
// net/http/httptest. It is for the tests of Dao's own packages and of programs that use
// them: the logic of a client, its handling of faults, its authentication, without a
// registry process. Interoperability with a real registry (Distribution's) is tested
// against one (internal/testutil.StartRegistry), which the proxy and the token server also
// work with.
//
// # Registry
//
// New returns a Registry, the OCI Distribution Spec v1.1 API in memory: the /v2/ ping;
// blobs (GET and HEAD with Range, DELETE); uploads (monolithic POST ?digest=, sessions with
// chunked PATCH whose Content-Range must follow on, 416 otherwise, a closing PUT ?digest=
// that is verified, status GET, DELETE, and cross-repository mounts); manifests by tag and
// by digest (GET, HEAD, PUT, DELETE), kept byte for byte with their media type, checked on
// PUT (JSON, a media type, for an image manifest its blobs and for an index its manifests,
// present in the repository), with OCI-Subject set for a manifest with a subject; tags/list
// and _catalog with n/last pagination and Link headers; the referrers API with its
// artifactType filter. Errors have the spec's codes and bodies
// ({"errors":[{"code":"MANIFEST_UNKNOWN","message":...}]}). Names are checked against the
// spec's regular expression, and sizes are bounded (manifests to 4 MiB, blobs to 1 GiB,
// which WithMaxManifestSize and WithMaxBlobSize change, and 1024 open upload sessions), so
// that a test cannot exhaust memory by mistake. Options make it read-only, require basic or
// bearer authentication, and call a hook for each request.
//
//	reg, err := registrytest.New()
//	if err != nil {
//		t.Fatal(err)
//	}
//	srv := httptest.NewServer(reg)
//	defer srv.Close()
//	// srv.Listener.Addr().String() + "/app:1" is a reference to push to and pull from.
//
// # Token server
//
// NewTokenServer returns a TokenServer of the Docker token protocol: GET /token with
// service and scope parameters and basic credentials (or the OAuth2 POST) answers a signed
// token that grants what its grants allow. A Registry made with WithTokenAuth challenges
// clients to fetch one (WWW-Authenticate: Bearer realm=...,service=...,scope=...) and
// refuses missing, expired, foreign or insufficient tokens with 401; CertificatePEM lets
// Distribution's registry trust it as well.
//
//	ts, err := registrytest.NewTokenServer(
//		registrytest.WithUser("alice", "secret"),
//		registrytest.WithGrant("alice", "team/*", "pull", "push"),
//		registrytest.WithGrant("", "public/*", "pull"), // anonymous pulls
//	)
//	if err != nil {
//		t.Fatal(err)
//	}
//	tokens := httptest.NewServer(ts)
//	defer tokens.Close()
//	reg, err := registrytest.New(registrytest.WithTokenAuth(tokens.URL+"/token", ts))
//
// # Fault proxy
//
// NewFaultProxy (for a handler in the same process) and NewFaultProxyURL (for a server at
// an address) return a FaultProxy that spoils answers as its faults say: a status (a 5xx, a
// 429 with Retry-After), a delay, a dropped connection, a body cut, stalled, truncated,
// corrupted, replaced or sent slowly. A fault matches requests by method and path, once or
// Forever, and the proxy records every request for the test to count.
//
//	proxy := registrytest.NewFaultProxy(reg)
//	if err := proxy.Add(registrytest.Fault{Kind: registrytest.Cut, Method: "GET", Path: "/blobs/", At: 1000}); err != nil {
//		t.Fatal(err)
//	}
//	srv := httptest.NewServer(proxy)
//	defer srv.Close()
//	defer proxy.Close() // runs first: it ends the stalls that srv.Close would wait for
//
// # Errors
//
// New and NewTokenServer return an error for an option they refuse, and Add for a fault it
// cannot apply: the error names the option or the fault and why, and matches
// ErrInvalidOption or ErrInvalidFault, of class dao.ErrInvalid (errdefs.IsInvalidArgument
// is true of it), as Dao's options do everywhere.
//
// # Goroutines
//
// None of the three starts a goroutine. A stalled or slow answer of a FaultProxy waits on
// its request's goroutine until the client gives up or the proxy is closed: close the
// proxy before, or as, the httptest.Server that serves it is closed, since Server.Close
// waits for the requests it serves.
package registrytest
