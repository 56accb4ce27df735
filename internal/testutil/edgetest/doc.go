// Package edgetest opens edge Runtimes over the private containerd of package testutil, for
// the tests of edge and of the packages built on it (pipeline).
//
// It is a package of its own, not part of testutil, so that testutil does not import edge:
// the tests of the packages that edge imports (registry, policy, the root package) may use
// testutil without an import cycle.
package edgetest
