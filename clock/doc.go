// Package clock is the time of every Dao component that waits or tells time: the
// orchestrator's loops, simulated nodes, the registry client's retries and tokens, the
// pipeline runner's timestamps. [System] is the real clock; [Manual] moves only when told
// to, so that a test of backoff or a simulation of hours of a cluster runs in milliseconds
// and the same way every time. One Manual can drive a control plane and thousands of
// simulated nodes together.
//
//	c := clock.NewManual(time.Unix(1_700_000_000, 0))
//	c.AfterFunc(5*time.Second, func() { fmt.Println("heartbeat timeout") })
//	c.Advance(5 * time.Second) // prints, on this goroutine
package clock
