package regtest

import (
	"sync"
	"testing"
	"time"

	"github.com/opendao/dao/registry/remote"
)

// PlainHTTP returns WithHosts that reaches each host over plain HTTP.
func PlainHTTP(hosts ...string) remote.Option {
	m := make(map[string]remote.HostConfig)
	for _, h := range hosts {
		m[h] = remote.HostConfig{PlainHTTP: true}
	}
	return remote.WithHosts(m)
}

// NewClient returns a registry client for tests, closed when the test ends: plain HTTP to
// hosts, quick retries, then opts.
func NewClient(t testing.TB, hosts []string, opts ...remote.Option) *remote.Client {
	t.Helper()
	all := append([]remote.Option{PlainHTTP(hosts...), QuickRetry()}, opts...)
	c, err := remote.NewClient(all...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ProgressLog collects progress reports; its Add is a WithProgress function.
type ProgressLog struct {
	mu  sync.Mutex
	all []remote.Progress
}

// Add records pr.
func (p *ProgressLog) Add(pr remote.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.all = append(p.all, pr)
}

// Reports returns the reports so far.
func (p *ProgressLog) Reports() []remote.Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]remote.Progress(nil), p.all...)
}

// QuickRetry is the retry policy of test clients: five attempts, 1 to 10 ms apart.
func QuickRetry() remote.Option {
	return remote.WithRetry(remote.RetryPolicy{MaxAttempts: 5, MinDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond, MaxRetryAfter: time.Minute})
}
