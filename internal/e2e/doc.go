// Package e2e holds Dao's end-to-end tests: programs of the project (the dao CLI's agent)
// run as separate processes, in network namespaces of their own (internal/testutil/netns),
// against a real containerd and a control plane in the test process, and the tests check
// what containerd runs. The package has no code but its tests.
package e2e
