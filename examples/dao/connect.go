package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
)

// dialTimeout bounds how long dao waits for containerd to answer.
const dialTimeout = 2 * time.Second

// reachError says that containerd could not be reached at addr.
type reachError struct {
	addr string
	err  error
}

func (e *reachError) Error() string {
	hint := "is it running?"
	if errors.Is(e.err, fs.ErrPermission) {
		hint = "is dao run as root?"
	}
	return fmt.Sprintf("cannot reach containerd at %s: %s (%s)", e.addr, hint, e.cause())
}

// cause is the reason in a few words: "connect: no such file or directory".
func (e *reachError) cause() string {
	var op *net.OpError
	if errors.As(e.err, &op) && op.Err != nil {
		return op.Err.Error() // without the address again
	}
	return e.err.Error()
}

func (e *reachError) Unwrap() error { return e.err }

// connect returns a client of the containerd at g.address, in g.namespace, once it has
// answered; it fails within dialTimeout with a *reachError when nothing answers.
func connect(ctx context.Context, g *globals) (*client.Client, error) {
	if path, ok := socketPath(g.address); ok {
		// The client dials lazily and retries until its deadline: a direct dial gives the
		// cause (no socket, nobody listening, no permission) at once.
		conn, err := net.DialTimeout("unix", path, dialTimeout)
		if err != nil {
			return nil, &reachError{addr: g.address, err: err}
		}
		conn.Close()
	}
	c, err := client.New(g.address, client.WithTimeout(dialTimeout), client.WithDefaultNamespace(g.namespace))
	if err != nil {
		return nil, &reachError{addr: g.address, err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	serving, err := c.IsServing(ctx)
	if err == nil && !serving {
		err = errors.New("it does not serve requests yet")
	}
	if err != nil {
		c.Close()
		return nil, &reachError{addr: g.address, err: err}
	}
	g.logf("connected to containerd at %s, namespace %s", g.address, g.namespace)
	return c, nil
}

// socketPath returns the file of a unix socket address ("/run/x.sock", "unix:///run/x.sock").
func socketPath(addr string) (string, bool) {
	if p, ok := strings.CutPrefix(addr, "unix://"); ok {
		return p, true
	}
	if strings.Contains(addr, "://") {
		return "", false
	}
	return addr, true
}
