package server

import (
	"container/list"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiters keeps one token bucket per client, forgetting those idle for long and, past
// max clients, the least recently seen: many distinct addresses cannot grow the table
// without bound. A client forgotten starts again with a full bucket.
type limiters struct {
	limit rate.Limit
	burst int
	key   func(*http.Request) string
	now   func() time.Time
	max   int

	mu      sync.Mutex
	clients map[string]*list.Element // of *client, most recently seen first
	lru     list.List
	swept   time.Time
}

type client struct {
	key  string
	lim  *rate.Limiter
	seen time.Time
}

// defaultRateClients is the default bound of WithRateLimitClients.
const defaultRateClients = 100_000

// idleAfter is how long a client's bucket is kept after its last request; it is full again
// by then for any sensible rate.
const idleAfter = 10 * time.Minute

// RemoteIP is the default client key of WithRateLimit: the host of the request's
// RemoteAddr. Behind a proxy, give WithRateLimitKey a function that reads the header the
// proxy sets.
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// allow takes a token from r's client, or returns how long until one is there.
func (l *limiters) allow(r *http.Request) (bool, time.Duration) {
	now := l.now()
	k := l.key(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > idleAfter {
		for e := l.lru.Back(); e != nil && now.Sub(e.Value.(*client).seen) > idleAfter; e = l.lru.Back() {
			delete(l.clients, e.Value.(*client).key)
			l.lru.Remove(e)
		}
		l.swept = now
	}
	var c *client
	if e, ok := l.clients[k]; ok {
		c = e.Value.(*client)
		l.lru.MoveToFront(e)
	} else {
		for l.lru.Len() >= l.max {
			e := l.lru.Back()
			delete(l.clients, e.Value.(*client).key)
			l.lru.Remove(e)
		}
		c = &client{key: k, lim: rate.NewLimiter(l.limit, l.burst)}
		l.clients[k] = l.lru.PushFront(c)
	}
	c.seen = now
	res := c.lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// tooMany is the answer to a client past its limit.
func tooMany(wait time.Duration) *apiError {
	secs := int((wait + time.Second - 1) / time.Second)
	return newError(http.StatusTooManyRequests, codeTooManyRequests, "rate limit exceeded, retry in %d s", secs).
		withHeader("Retry-After", strconv.Itoa(secs))
}

// WithRateLimitClients bounds the clients whose buckets WithRateLimit keeps at n: past
// it, the least recently seen is forgotten (and starts again with a full bucket). The
// default is 100000; n must be at least 1.
func WithRateLimitClients(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("%w: WithRateLimitClients: %d: at least 1", ErrInvalidOption, n)
		}
		o.rateClients = n
		return nil
	}
}
