package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/opendao/dao/clock"
	"github.com/opendao/dao/registry/oci"
)

// request is one registry request as the client sends it, perhaps several times.
type request struct {
	method string
	url    string
	header http.Header
	// body opens the request's body for each attempt; nil for none.
	body func() (io.ReadCloser, error)
	// size is the body's length; -1 if unknown.
	size int64
	// scopes are the token scopes the request needs, such as "repository:app:pull".
	scopes []string
	// ok lists the statuses that are an answer; any other is an error.
	ok []int
	// noAuth sends the request as it is: for token requests.
	noAuth bool
	// once sends the request once (or again only to authenticate): for requests that may
	// have changed the registry's state when they failed, which their caller retries.
	once bool
}

// maxErrorBody is the most of an error answer's body that is read.
const maxErrorBody = 64 << 10

// do sends r to ep and returns the answer if its status is one of r.ok. It authenticates as
// the registry's challenges ask, retries as the retry policy says, and waits for the host's
// rate limit and a free request slot first. The caller closes the body, which frees the slot.
func (c *Client) do(ctx context.Context, ep *endpoint, r *request) (*http.Response, error) {
	p := c.opts.retry
	if r.once {
		p.MaxAttempts = 1
	}
	auths := 0
	for attempt := 1; ; attempt++ {
		resp, err := c.send(ctx, ep, r)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("registry: %s %s: %w", r.method, redact(r.url), ctx.Err())
			}
			if !retryableError(ctx, err) || attempt >= p.MaxAttempts {
				if ce := connectError(r.url, err); ce != nil {
					return nil, ce
				}
				if errors.Is(err, ErrCredentialHelper) {
					return nil, err // its message says all
				}
				return nil, fmt.Errorf("registry: %s %s: %w (attempt %d of %d)", r.method, redact(r.url), err, attempt, p.MaxAttempts)
			}
			if err := c.sleep(ctx, attempt, 0); err != nil {
				return nil, fmt.Errorf("registry: %s %s: %w", r.method, redact(r.url), err)
			}
			continue
		}
		if slices.Contains(r.ok, resp.StatusCode) {
			return resp, nil
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		rerr := newResponseError(resp, body)
		if resp.StatusCode == http.StatusUnauthorized && !r.noAuth && auths < 2 {
			auths++
			scopes, retry, err := c.challenged(ctx, ep, resp, r.scopes)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", rerr, err)
			}
			if retry {
				r.scopes = scopes
				attempt--
				continue
			}
		}
		if !retryableStatus(resp.StatusCode) {
			return nil, rerr
		}
		if attempt >= p.MaxAttempts {
			return nil, fmt.Errorf("%w (attempt %d of %d)", rerr, attempt, p.MaxAttempts)
		}
		wait := retryAfter(resp.Header.Get("Retry-After"), c.opts.clock.Now())
		if err := c.sleep(ctx, attempt, wait); err != nil {
			return nil, fmt.Errorf("%w: %w", rerr, err)
		}
	}
}

// getAll sends r to ep as do does and reads the answer's whole body, of at most limit bytes
// (more is an error wrapping oci.ErrTooLarge), and at least want bytes if want > 0. An answer
// whose body breaks (a reset connection, fewer bytes than its Content-Length or want, a cut
// by the watchdog of WithSpeedLimit) is asked for again, with the retry policy's backoff, up
// to its MaxAttempts times. The answer it returns has its body closed; its headers are
// there to read.
func (c *Client) getAll(ctx context.Context, ep *endpoint, r *request, limit, want int64) (*http.Response, []byte, error) {
	p := c.opts.retry
	for attempt := 1; ; attempt++ {
		resp, err := c.do(ctx, ep, r)
		if err != nil {
			return nil, nil, err
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		resp.Body.Close()
		switch {
		case err == nil && int64(len(data)) > limit:
			return nil, nil, fmt.Errorf("%w: the answer to %s %s has more than %d bytes", oci.ErrTooLarge, r.method, redact(r.url), limit)
		case err == nil && int64(len(data)) < want:
			err = fmt.Errorf("%w: %d of %d bytes", errShortBody, len(data), want)
		case err == nil:
			return resp, data, nil
		}
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("registry: %s %s: %w", r.method, redact(r.url), ctx.Err())
		}
		if !retryableError(ctx, err) || attempt >= p.MaxAttempts {
			return nil, nil, fmt.Errorf("registry: read answer to %s %s: %w (attempt %d of %d)", r.method, redact(r.url), err, attempt, p.MaxAttempts)
		}
		if err := c.sleep(ctx, attempt, 0); err != nil {
			return nil, nil, fmt.Errorf("registry: %s %s: %w", r.method, redact(r.url), err)
		}
	}
}

// sleep waits before retry n, at least serverWait.
func (c *Client) sleep(ctx context.Context, n int, serverWait time.Duration) error {
	d, err := c.retryWait(ctx, n, serverWait)
	if err != nil {
		return err
	}
	return clock.Sleep(ctx, c.opts.clock, d)
}

// send sends r once.
func (c *Client) send(ctx context.Context, ep *endpoint, r *request) (*http.Response, error) {
	var auth string
	if !r.noAuth {
		var err error
		if auth, err = c.authorization(ctx, ep, r.scopes); err != nil {
			return nil, err
		}
	}
	h := c.host(ep.host)
	if err := c.waitRate(ctx, h); err != nil {
		return nil, err
	}
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// The request has a context of its own, which the body's watchdog cancels to cut a
	// stuck or too slow answer, and closing the body cancels to free it.
	rctx, cancel := context.WithCancel(ctx)
	release := sync.OnceFunc(func() {
		cancel()
		<-h.slots
	})
	req, err := http.NewRequestWithContext(rctx, r.method, r.url, nil)
	if err != nil {
		release()
		return nil, err
	}
	for k, v := range ep.header {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", c.opts.userAgent)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if r.body != nil {
		body, err := r.body()
		if err != nil {
			release()
			return nil, &permanentError{err}
		}
		req.Body, req.ContentLength = body, r.size
		req.GetBody = r.body // for the plain HTTP fallback of loopback hosts
		if r.size == 0 {
			body.Close()
			req.Body, req.GetBody = http.NoBody, nil
		}
	}
	resp, err := ep.client.Do(req)
	if err != nil {
		release()
		return nil, err
	}
	resp.Body = &slotBody{ReadCloser: watch(resp.Body, c.opts.speed, cancel), release: release}
	return resp, nil
}

// waitRate waits for the host's rate limiter, on the client's clock.
func (c *Client) waitRate(ctx context.Context, h *hostState) error {
	if h.limiter == nil {
		return nil
	}
	now := c.opts.clock.Now()
	res := h.limiter.ReserveN(now, 1)
	if !res.OK() {
		return fmt.Errorf("registry: rate limit cannot be met")
	}
	if err := clock.Sleep(ctx, c.opts.clock, res.DelayFrom(now)); err != nil {
		res.CancelAt(c.opts.clock.Now())
		return err
	}
	return nil
}

// slotBody frees its request slot when closed.
type slotBody struct {
	io.ReadCloser
	release func()
}

func (b *slotBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}

// permanentError is an error that retrying cannot fix, such as a body that cannot be
// opened.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// redact drops the query of a URL for messages: upload URLs carry state.
func redact(u string) string {
	for i := 0; i < len(u); i++ {
		if u[i] == '?' {
			return u[:i]
		}
	}
	return u
}

// drain closes a response body.
func drain(resp *http.Response) {
	if resp != nil {
		resp.Body.Close()
	}
}
