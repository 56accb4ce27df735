// Package conformance pins the OCI distribution-spec conformance suite
// (github.com/opencontainers/distribution-spec/conformance) as a tool of its own module, so
// that its dependencies stay out of Dao's go.mod. The test of
// github.com/opendao/dao/registry/server builds it from here:
//
//	cd internal/conformance && GOFLAGS=-mod=mod go build -o /tmp/oci-conformance github.com/opencontainers/distribution-spec/conformance
//
// and runs the binary against a server on a loopback port.
package conformance
