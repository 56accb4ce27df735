//go:build race

package edge

import "github.com/sasha-s/go-deadlock"

// In race builds go-cni swaps its mutexes for go-deadlock's, which find a goroutine's ID by
// parsing its stack. With this module's Go runtime that parse fails: every goroutine looks
// like goroutine 0, so two concurrent CNI calls look like one goroutine locking a mutex
// twice ("POTENTIAL DEADLOCK: recursive locking"), and go-deadlock exits the program. Its
// mutexes then behave as sync's; the race detector still checks go-cni.
func init() { deadlock.Opts.Disable = true }
