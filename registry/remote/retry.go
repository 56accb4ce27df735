package remote

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy says how the client retries a request that failed for a reason that may pass:
// HTTP 408, 429 and 5xx other than 501, and connections that broke or timed out. It waits
// with exponential backoff and jitter between attempts, or as long as the registry's
// Retry-After asks, whichever is longer.
type RetryPolicy struct {
	// MaxAttempts is how many times a request is sent at most, the first included; 1 means
	// no retry. Interrupted blob downloads count only the attempts that made no progress.
	MaxAttempts int
	// MinDelay is the backoff before the first retry; each retry doubles it.
	MinDelay time.Duration
	// MaxDelay caps the backoff (but not Retry-After, which is honoured in full).
	MaxDelay time.Duration
	// MaxRetryAfter is the longest Retry-After the client waits for; a registry that asks
	// for more makes the request fail at once with ErrTooManyRequests, as does one that asks
	// for more than the context's deadline leaves.
	MaxRetryAfter time.Duration
}

// DefaultRetryPolicy returns the policy NewClient uses: 5 attempts, backoff from 200ms up to
// 10s, Retry-After of up to 5 minutes.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 5, MinDelay: 200 * time.Millisecond, MaxDelay: 10 * time.Second, MaxRetryAfter: 5 * time.Minute}
}

func (p RetryPolicy) check() error {
	if p.MaxAttempts < 1 || p.MinDelay < 0 || p.MaxDelay < p.MinDelay || p.MaxRetryAfter < 0 {
		return fmt.Errorf("%w: retry policy %+v: want at least 1 attempt and 0 <= MinDelay <= MaxDelay", ErrInvalidOption, p)
	}
	return nil
}

// backoff returns the wait before retry n (1 for the first retry): MinDelay doubled n-1
// times, capped at MaxDelay, then drawn at random from its upper half.
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.MinDelay
	for i := 1; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, p.MaxDelay)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// retryableStatus reports whether an answer with this status may succeed if sent again.
func retryableStatus(code int) bool {
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return true
	case code >= 500 && code != http.StatusNotImplemented && code != http.StatusHTTPVersionNotSupported:
		return true
	}
	return false
}

// retryableError reports whether a request that failed with err (not an HTTP answer) may
// succeed if sent again: a broken or timed-out connection, but not a cancelled context, a
// bad certificate or a malformed URL.
func retryableError(ctx context.Context, err error) bool {
	var perm *permanentError
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.As(err, &perm) {
		return false
	}
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	if errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &invalid) {
		return false
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return false // a name that does not exist does not come to exist in a second
	}
	if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") ||
		strings.Contains(err.Error(), "unsupported protocol scheme") {
		return false
	}
	return true
}

// retryAfter parses a Retry-After header: seconds, or an HTTP date relative to now. It
// returns 0 when there is none or it cannot be read.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.ParseInt(h, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		if s > int64(24*time.Hour/time.Second) {
			s = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// retryWait returns how long to wait before retry n after an answer that asked for
// serverWait (0 if it did not), or an error if the wait is longer than the policy or ctx
// allow.
func (c *Client) retryWait(ctx context.Context, n int, serverWait time.Duration) (time.Duration, error) {
	p := c.opts.retry
	d := p.backoff(n)
	if serverWait <= 0 {
		return d, nil
	}
	if serverWait > p.MaxRetryAfter {
		return 0, fmt.Errorf("%w: the registry asks to wait %v, more than the %v allowed", ErrTooManyRequests, serverWait, p.MaxRetryAfter)
	}
	if deadline, ok := ctx.Deadline(); ok && c.opts.clock.Now().Add(serverWait).After(deadline) {
		return 0, fmt.Errorf("%w: the registry asks to wait %v, past the context's deadline", ErrTooManyRequests, serverWait)
	}
	return max(d, serverWait), nil
}
