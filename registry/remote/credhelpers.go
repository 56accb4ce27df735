package remote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"sync"

	"github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"
)

// tokenUsername is the username a credential helper answers with an identity token as
// its secret, as docker's CLI reads it.
const tokenUsername = "<token>"

// CredentialHelperError is the failure of a docker credential helper
// (docker-credential-NAME, named by credsStore or credHelpers of a docker config.json) to
// give the credentials of a host: it is not installed, or it failed. The client does not
// then go on anonymously, which would hide the failure behind the registry's refusal; a
// helper that answers that it has no credentials for the host is no error (anonymous
// access, as docker does). It matches ErrCredentialHelper with errors.Is, and its cause.
type CredentialHelperError struct {
	// Helper is the program run, "docker-credential-ecr-login".
	Helper string
	// Host is the host whose credentials were asked for.
	Host string
	// Config is the docker config that names the helper, and Key the key that does
	// ("credsStore" or "credHelpers").
	Config, Key string
	// Err is the cause: exec.ErrNotFound, or the helper's failure with what it printed.
	Err error
}

// Error returns one line that says what to do.
func (e *CredentialHelperError) Error() string {
	if errors.Is(e.Err, exec.ErrNotFound) {
		return "registry: credential helper " + e.Helper + " (" + e.Key + " of " + e.Config + ") is not installed: install it, or remove it from " + e.Config
	}
	return "registry: credential helper " + e.Helper + " (" + e.Key + " of " + e.Config + ") failed to give the credentials of " + e.Host + ": " + e.Err.Error() + ": log in again (docker login " + e.Host + "), or fix the helper"
}

// Unwrap returns ErrCredentialHelper and the cause.
func (e *CredentialHelperError) Unwrap() []error { return []error{ErrCredentialHelper, e.Err} }

// credHelpers runs the credential helpers of a docker config, once per host for the life of
// the client.
type credHelpers struct {
	config string
	store  string            // credsStore
	byHost map[string]string // credHelpers, keyed as dockerConfigHost
	// run runs helper for host; replaced in tests.
	run func(ctx context.Context, helper, serverURL string) (*credentials.Credentials, error)

	mu    sync.Mutex
	cache map[string]*helperAnswer
}

type helperAnswer struct {
	done  chan struct{}
	cred  Credentials
	found bool
	err   error
}

// helperFor returns the helper that has host's credentials and the config key naming it,
// or "" for none.
func (h *credHelpers) helperFor(host string) (helper, key string) {
	if name, ok := h.byHost[host]; ok && name != "" {
		return "docker-credential-" + name, "credHelpers"
	}
	if h.store != "" {
		return "docker-credential-" + h.store, "credsStore"
	}
	return "", ""
}

// get returns the credentials of host (as dockerConfigHost keys it) from its helper, and
// whether there was a helper with credentials for it.
func (h *credHelpers) get(ctx context.Context, host string) (Credentials, bool, error) {
	if h == nil {
		return Credentials{}, false, nil
	}
	helper, key := h.helperFor(host)
	if helper == "" {
		return Credentials{}, false, nil
	}
	h.mu.Lock()
	a, ok := h.cache[host]
	if !ok {
		a = &helperAnswer{done: make(chan struct{})}
		h.cache[host] = a
	}
	h.mu.Unlock()
	if !ok {
		a.cred, a.found, a.err = h.ask(ctx, helper, key, host)
		if ctx.Err() != nil && a.err != nil {
			// Not the helper's answer: the next caller asks again.
			h.mu.Lock()
			delete(h.cache, host)
			h.mu.Unlock()
		}
		close(a.done)
	}
	select {
	case <-a.done:
	case <-ctx.Done():
		return Credentials{}, false, ctx.Err()
	}
	return a.cred, a.found, a.err
}

// ask runs helper for host.
func (h *credHelpers) ask(ctx context.Context, helper, key, host string) (Credentials, bool, error) {
	serverURL := host
	if host == "registry-1.docker.io" {
		serverURL = "https://index.docker.io/v1/" // as docker login stores Docker Hub's
	}
	c, err := h.run(ctx, helper, serverURL)
	if credentials.IsErrCredentialsNotFound(err) {
		return Credentials{}, false, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return Credentials{}, false, ctx.Err()
		}
		return Credentials{}, false, &CredentialHelperError{Helper: helper, Host: host, Config: h.config, Key: key, Err: err}
	}
	if c.Username == tokenUsername {
		return Credentials{IdentityToken: c.Secret}, true, nil
	}
	return Credentials{Username: c.Username, Password: c.Secret}, true, nil
}

// runHelper runs "helper get" with serverURL on its standard input, the protocol of docker's
// credential helpers, and stops it when ctx ends.
func runHelper(ctx context.Context, helper, serverURL string) (*credentials.Credentials, error) {
	if _, err := exec.LookPath(helper); err != nil {
		return nil, err
	}
	return client.Get(func(args ...string) client.Program {
		return &helperProgram{cmd: exec.CommandContext(ctx, helper, args...)}
	}, serverURL)
}

// helperProgram is a client.Program that keeps the helper's standard error for the error
// it returns, rather than printing it on the process's.
type helperProgram struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
}

func (p *helperProgram) Input(in io.Reader) { p.cmd.Stdin = in }

func (p *helperProgram) Output() ([]byte, error) {
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.Output()
	if err != nil && len(bytes.TrimSpace(out)) == 0 {
		// client.Get reports what the helper printed on its standard output; many
		// print their reason on the standard error.
		if msg := strings.TrimSpace(p.stderr.String()); msg != "" {
			out = []byte(firstLine(msg))
		}
	}
	return out, err
}

// firstLine returns the first line of s.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
