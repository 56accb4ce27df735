package server

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiters keeps one token bucket per client, forgetting those idle for long.
type limiters struct {
	limit rate.Limit
	burst int
	key   func(*http.Request) string
	now   func() time.Time

	mu      sync.Mutex
	clients map[string]*client
	swept   time.Time
}

type client struct {
	lim  *rate.Limiter
	seen time.Time
}

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
		for ck, c := range l.clients {
			if now.Sub(c.seen) > idleAfter {
				delete(l.clients, ck)
			}
		}
		l.swept = now
	}
	c, ok := l.clients[k]
	if !ok {
		c = &client{lim: rate.NewLimiter(l.limit, l.burst)}
		l.clients[k] = c
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
