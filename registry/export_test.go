package registry

import "time"

// SetStallTimeout sets how long a blob response may stall, for tests; it returns a function
// that restores the old value.
func SetStallTimeout(d time.Duration) (restore func()) {
	old := stallTimeout
	stallTimeout = d
	return func() { stallTimeout = old }
}
