package remote

import (
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"strings"
	"syscall"
)

// ConnectError is the failure to talk HTTP(S) with a registry, a mirror or a token server
// at all: its name does not resolve, nothing listens on its port, the network does not get
// there, it answers HTTPS in plain HTTP, or its certificate is not trusted. Its message is
// one line that says what to do. It matches ErrUnreachable, ErrPlainHTTP or
// ErrUntrusted with errors.Is, and its cause too: errors.As finds the *net.DNSError, and
// errors.Is(err, syscall.ECONNREFUSED) holds for a refused connection.
type ConnectError struct {
	// Host is the host[:port] the client tried to reach.
	Host string
	// Err is the cause, below the *url.Error and *net.OpError of the HTTP client: a
	// *net.DNSError, an *os.SyscallError of ECONNREFUSED, an x509 error, ...
	Err error

	kind error // ErrUnreachable, ErrPlainHTTP or ErrUntrusted
}

// Error returns one line: "registry: cannot reach r.example:5000: connection refused: is
// the registry running, and listening on that port?".
func (e *ConnectError) Error() string {
	switch e.kind {
	case ErrPlainHTTP:
		return "registry: " + e.Host + " answers in plain HTTP, not HTTPS: if the network to it is trusted, reach it over plain HTTP (dao pull --insecure " + e.Host + ", plain_http in registries.yaml, HostConfig.PlainHTTP)"
	case ErrUntrusted:
		return "registry: the certificate of " + e.Host + " is not trusted (" + e.Err.Error() + "): give the CA that signed it (tls.ca_file in registries.yaml, ca in hosts.toml, HostConfig.RootCAs)"
	}
	var dns *net.DNSError
	switch {
	case errors.As(e.Err, &dns) && dns.IsNotFound:
		return "registry: cannot reach " + e.Host + ": no such host (" + dns.Name + " does not resolve): check the registry's name and this machine's DNS"
	case errors.As(e.Err, &dns):
		return "registry: cannot reach " + e.Host + ": looking up " + dns.Name + " failed (" + dns.Err + "): check this machine's DNS and network"
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		return "registry: cannot reach " + e.Host + ": connection refused: is the registry running, and listening on that port?"
	case errors.Is(e.Err, syscall.ENETUNREACH), errors.Is(e.Err, syscall.EHOSTUNREACH):
		return "registry: cannot reach " + e.Host + ": no route to it (" + e.Err.Error() + "): check the network"
	case isTimeout(e.Err):
		return "registry: cannot reach " + e.Host + ": no answer in time: check the network, firewalls and proxy settings (HTTPS_PROXY)"
	}
	return "registry: cannot reach " + e.Host + ": " + e.Err.Error() + ": check the network"
}

// Unwrap returns the error's sentinel and its cause.
func (e *ConnectError) Unwrap() []error { return []error{e.kind, e.Err} }

// connectError returns the *ConnectError that err, the error of an HTTP request to u, is,
// or nil if err is none: an error of the request's context, of its body, or of the
// client's own checks.
func connectError(u string, err error) *ConnectError {
	host := u
	if pu, perr := url.Parse(u); perr == nil && pu.Host != "" {
		host = pu.Host
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if pu, perr := url.Parse(ue.URL); perr == nil && pu.Host != "" {
			host = pu.Host // a redirect's target, perhaps
		}
	}
	if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return &ConnectError{Host: host, Err: err, kind: ErrPlainHTTP}
	}
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknownAuthority):
		return &ConnectError{Host: host, Err: unknownAuthority, kind: ErrUntrusted}
	case errors.As(err, &hostname):
		return &ConnectError{Host: host, Err: hostname, kind: ErrUntrusted}
	case errors.As(err, &invalid):
		return &ConnectError{Host: host, Err: invalid, kind: ErrUntrusted}
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return &ConnectError{Host: host, Err: op.Err, kind: ErrUnreachable}
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return &ConnectError{Host: host, Err: dns, kind: ErrUnreachable}
	}
	return nil
}

// isTimeout reports whether err is a timeout of the network.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
