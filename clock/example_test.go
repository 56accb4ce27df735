package clock_test

import (
	"context"
	"fmt"
	"time"

	"github.com/opendao/dao/clock"
)

// A manual clock makes the calls due as the program moves it, in order of their time.
func ExampleManual() {
	c := clock.NewManual(time.Unix(1_700_000_000, 0))
	start := c.Now()
	c.AfterFunc(5*time.Second, func() { fmt.Println("heartbeat timeout after", c.Now().Sub(start)) })
	c.AfterFunc(time.Second, func() { fmt.Println("retry after", c.Now().Sub(start)) })
	c.Advance(10 * time.Second)
	fmt.Println("now", c.Now().Sub(start), "and", c.Pending(), "calls pending")
	// Output:
	// retry after 1s
	// heartbeat timeout after 5s
	// now 10s and 0 calls pending
}

// Sleep waits on any clock and stops early when its context ends.
func ExampleSleep() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := clock.Sleep(ctx, clock.System(), time.Hour)
	fmt.Println(err)
	// Output: context deadline exceeded
}
