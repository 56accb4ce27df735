// Package daemon runs private instances of the real daemons Dao works with (containerd, and Debian's docker-registry),
// each with its own directories and socket under a temporary directory, never the system's.
// Tests reach it through internal/testutil; benchmarks and examples use it directly.
//
// Each daemon's directory names the process that started it. A process killed before it
// could close its daemons (a test binary past its timeout, say) leaves them running, with
// their shims, containers and runc's records of them; the next process to start a daemon
// cleans all of that up first (ReapStale).
package daemon
