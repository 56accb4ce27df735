// Package regtest holds the small test helpers that the tests of several registry packages
// share (oci, layout, remote, ctrd), so that each lives once.
package regtest
