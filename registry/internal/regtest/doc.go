// Package regtest holds the small test helpers that the tests of several registry packages
// share (oci, layout, build, remote, ctrd), so that each lives once: image and layer
// builders, test clients, and the serving of registrytest's registry and fault proxy for
// one test. The registry, the fault proxy and the token server themselves are
// registrytest's.
package regtest
