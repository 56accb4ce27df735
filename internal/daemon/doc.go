// Package daemon runs private instances of the real daemons Dao works with (containerd, and Debian's docker-registry),
// each with its own directories and socket under a temporary directory, never the system's.
// Tests reach it through internal/testutil; benchmarks and examples use it directly.
package daemon
