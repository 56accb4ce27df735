package remote

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml/v2"
	tomlu "github.com/pelletier/go-toml/v2/unstable"
)

// LoadHostsDir reads containerd's registry hosts directory dir (containerd's
// config_path, /etc/containerd/certs.d by default) into WithHosts's settings, keyed by
// registry host, so that a node's containerd configuration is honoured: each subdirectory
// HOST (or HOST_PORT_ for HOST:PORT, as containerd names them; "_default" for every registry
// without one of its own, under DefaultHostsKey) holds a hosts.toml in containerd's format,
// or, without one, docker's certificate files (*.crt: CAs; *.cert and *.key: client
// certificates). A missing dir gives no hosts.
//
// Of hosts.toml it reads what containerd does: "server" (the registry's own URL), the
// [host."URL"] tables in the order of the file (mirrors, tried before the server), and
// for each of them and for the server: capabilities ("pull", "resolve", "push";
// "referrers" is accepted), ca (a file or a list: added to the system's roots, as
// containerd does), client (a file holding certificate and key, a list of them, or a list
// of [certificate, key] pairs), skip_verify, override_path and header. Relative paths are
// relative to the host's directory. dial_timeout is accepted and not applied: the client's
// HTTP transport decides. Paths of override_path must end in "/v2", where the client
// appends the API's paths. A server named by a "localhost" or loopback host is reached
// exactly as written, without the loopback fallback of HostConfig.
//
// Errors name the file, and the line and key where the TOML says where; they match
// ErrInvalidOption.
func LoadHostsDir(dir string) (map[string]HostConfig, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: hosts directory: %v", ErrInvalidOption, err)
	}
	hosts := make(map[string]HostConfig)
	for _, e := range entries {
		if !e.IsDir() && e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		reg := hostOfDirectory(e.Name())
		hdir := filepath.Join(dir, e.Name())
		if fi, err := os.Stat(hdir); err != nil || !fi.IsDir() {
			continue
		}
		if _, ok := hosts[reg]; ok && reg != e.Name() {
			continue // containerd prefers HOST_PORT_ to HOST:PORT; ReadDir sorts ':' first
		}
		hc, err := loadHostDir(reg, hdir)
		if err != nil {
			return nil, err
		}
		hosts[reg] = hc
	}
	return hosts, nil
}

// hostOfDirectory returns the registry host of a directory of the hosts directory:
// "r.example_5000_" is r.example:5000, as containerd's hostDirectory names it.
func hostOfDirectory(name string) string {
	if name == DefaultHostsKey || !strings.HasSuffix(name, "_") {
		return name
	}
	i := strings.LastIndex(name[:len(name)-1], "_")
	if i <= 0 {
		return name
	}
	port := name[i+1 : len(name)-1]
	if port == "" || strings.Trim(port, "0123456789") != "" {
		return name
	}
	return name[:i] + ":" + port
}

// hostsFile is a hosts.toml.
type hostsFile struct {
	hostFileConfig
	Server string                    `toml:"server"`
	Hosts  map[string]hostFileConfig `toml:"host"`
}

// hostFileConfig is the settings of one host of a hosts.toml, as containerd reads them.
type hostFileConfig struct {
	Capabilities []string       `toml:"capabilities"`
	CA           any            `toml:"ca"`
	Client       any            `toml:"client"`
	SkipVerify   *bool          `toml:"skip_verify"`
	Header       map[string]any `toml:"header"`
	OverridePath bool           `toml:"override_path"`
	DialTimeout  string         `toml:"dial_timeout"`
}

// loadHostDir reads the directory of registry reg.
func loadHostDir(reg, dir string) (HostConfig, error) {
	file := filepath.Join(dir, "hosts.toml")
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return loadCertFiles(dir)
	}
	if err != nil {
		return HostConfig{}, fmt.Errorf("%w: %v", ErrInvalidOption, err)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidOption, file, fmt.Sprintf(format, args...))
	}
	var hf hostsFile
	if err := toml.Unmarshal(data, &hf); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			key := strings.Join(de.Key(), ".")
			msg := strings.TrimPrefix(de.Error(), "toml: ")
			if key != "" {
				return HostConfig{}, fail("line %d, column %d, key %s: %s", row, col, key, msg)
			}
			return HostConfig{}, fail("line %d, column %d: %s", row, col, msg)
		}
		return HostConfig{}, fail("%v", strings.TrimPrefix(err.Error(), "toml: "))
	}
	var hc HostConfig
	for _, h := range orderedHosts(data) {
		fc := hf.Hosts[h]
		u, err := hostURL(h, fc.OverridePath)
		if err != nil {
			return HostConfig{}, fail("host %q: %v", h, err)
		}
		caps, err := hostCapabilities(fc.Capabilities)
		if err != nil {
			return HostConfig{}, fail("host %q: %v", h, err)
		}
		t, err := hostTLS(dir, fc)
		if err != nil {
			return HostConfig{}, fail("host %q: %v", h, err)
		}
		if sameHost(u, reg) {
			// The registry itself, among its hosts: how to reach it.
			hc.Server, hc.PlainHTTP = u, strings.HasPrefix(u, "http://")
			hc.RootCAs, hc.SkipVerify, hc.Certificates, hc.Header = t.roots, t.skip, t.certs, t.header
			continue
		}
		hc.Mirrors = append(hc.Mirrors, Mirror{URL: u, Capabilities: caps, RootCAs: t.roots, SkipVerify: t.skip, Certificates: t.certs, Header: t.header})
	}
	t, err := hostTLS(dir, hf.hostFileConfig)
	if err != nil {
		return HostConfig{}, fail("%v", err)
	}
	if _, err := hostCapabilities(hf.Capabilities); err != nil {
		return HostConfig{}, fail("%v", err)
	}
	if t.roots != nil {
		hc.RootCAs = t.roots
	}
	if hf.SkipVerify != nil {
		hc.SkipVerify = t.skip
	}
	hc.Certificates = append(hc.Certificates, t.certs...)
	if t.header != nil {
		hc.Header = t.header
	}
	if hf.Server != "" {
		u, err := hostURL(hf.Server, hf.OverridePath)
		if err != nil {
			return HostConfig{}, fail("server %q: %v", hf.Server, err)
		}
		hc.Server = u
		hc.PlainHTTP = strings.HasPrefix(u, "http://")
	}
	return hc, nil
}

// sameHost reports whether the base URL u is registry reg's own server.
func sameHost(u, reg string) bool {
	pu, err := url.Parse(u)
	if err != nil {
		return false
	}
	return pu.Host == reg || reg == "docker.io" && pu.Host == "registry-1.docker.io"
}

// hostURL turns a hosts.toml server or host ("https://r.example", "r.example:5000/v2",
// "http://m.example/prefix/v2" with override_path) into the base URL the client appends
// "/v2/..." to, as containerd's parseHostConfig reads it.
func hostURL(s string, overridePath bool) (string, error) {
	if !strings.HasPrefix(s, "http") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("not an http(s) URL")
	}
	p := ""
	if u.Path != "" {
		p = path.Clean(u.Path)
	}
	switch {
	case strings.HasSuffix(p, "/v2"):
		p = strings.TrimSuffix(p, "/v2")
	case overridePath:
		return "", errors.New("override_path with a path that does not end in /v2, which this client cannot use")
	}
	return u.Scheme + "://" + u.Host + p, nil
}

// hostCapabilities reads capabilities; none means all.
func hostCapabilities(names []string) (Capability, error) {
	if len(names) == 0 {
		return CapPull | CapResolve | CapPush, nil
	}
	var caps Capability
	for _, n := range names {
		switch strings.ToLower(n) {
		case "pull":
			caps |= CapPull
		case "resolve":
			caps |= CapResolve
		case "push":
			caps |= CapPush
		case "referrers":
		default:
			return 0, fmt.Errorf("capabilities: unknown capability %q: want pull, resolve, push or referrers", n)
		}
	}
	if caps == 0 {
		// Only "referrers": a mirror used for nothing this client does.
		return 0, errors.New(`capabilities: "referrers" alone is not supported: add pull or resolve`)
	}
	return caps, nil
}

// hostSettings are the TLS settings and headers of a host of hosts.toml.
type hostSettings struct {
	roots  *x509.CertPool
	skip   bool
	certs  []tls.Certificate
	header http.Header
}

// hostTLS reads the ca, client, skip_verify and header of fc, relative to dir.
func hostTLS(dir string, fc hostFileConfig) (hostSettings, error) {
	var t hostSettings
	if fc.SkipVerify != nil {
		t.skip = *fc.SkipVerify
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	var cas []string
	switch v := fc.CA.(type) {
	case nil:
	case string:
		cas = []string{abs(v)}
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return t, fmt.Errorf("ca: want a file or a list of files, got %v", e)
			}
			cas = append(cas, abs(s))
		}
	default:
		return t, fmt.Errorf("ca: want a file or a list of files, got %v", v)
	}
	if len(cas) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		for _, f := range cas {
			pem, err := os.ReadFile(f)
			if err != nil {
				return t, fmt.Errorf("ca: %v", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return t, fmt.Errorf("ca: %s holds no PEM certificate", f)
			}
		}
		t.roots = pool
	}
	var pairs [][2]string
	switch v := fc.Client.(type) {
	case nil:
	case string:
		pairs = [][2]string{{abs(v), ""}}
	case []any:
		for _, e := range v {
			switch p := e.(type) {
			case string:
				pairs = append(pairs, [2]string{abs(p), ""})
			case []any:
				if len(p) != 2 {
					return t, fmt.Errorf("client: want [certificate, key] pairs, got %v", p)
				}
				c, ok1 := p[0].(string)
				k, ok2 := p[1].(string)
				if !ok1 || !ok2 {
					return t, fmt.Errorf("client: want [certificate, key] pairs, got %v", p)
				}
				pairs = append(pairs, [2]string{abs(c), abs(k)})
			default:
				return t, fmt.Errorf("client: want a file, a list of files or of [certificate, key] pairs, got %v", e)
			}
		}
	default:
		return t, fmt.Errorf("client: want a file, a list of files or of [certificate, key] pairs, got %v", v)
	}
	for _, p := range pairs {
		cert, err := loadKeyPair(p[0], p[1])
		if err != nil {
			return t, fmt.Errorf("client: %v", err)
		}
		t.certs = append(t.certs, cert)
	}
	if len(fc.Header) > 0 {
		t.header = http.Header{}
		for k, v := range fc.Header {
			switch v := v.(type) {
			case string:
				t.header[http.CanonicalHeaderKey(k)] = []string{v}
			case []any:
				for _, e := range v {
					s, ok := e.(string)
					if !ok {
						return t, fmt.Errorf("header %q: want a string or a list of strings, got %v", k, e)
					}
					t.header.Add(k, s)
				}
			default:
				return t, fmt.Errorf("header %q: want a string or a list of strings, got %v", k, v)
			}
		}
	}
	return t, nil
}

// loadKeyPair reads a client certificate and its key; an empty key file means the key is in
// the certificate's file.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM := certPEM
	if keyFile != "" {
		if keyPEM, err = os.ReadFile(keyFile); err != nil {
			return tls.Certificate{}, err
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: %v", certFile, err)
	}
	return cert, nil
}

// loadCertFiles reads a host directory without hosts.toml, in docker's layout of
// certs.d: *.crt are CAs, *.cert client certificates with their *.key.
func loadCertFiles(dir string) (HostConfig, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return HostConfig{}, fmt.Errorf("%w: %v", ErrInvalidOption, err)
	}
	var fc hostFileConfig
	var cas, clients []any
	for _, e := range entries {
		n := e.Name()
		switch {
		case e.IsDir():
		case strings.HasSuffix(n, ".crt"):
			cas = append(cas, filepath.Join(dir, n))
		case strings.HasSuffix(n, ".cert"):
			key := filepath.Join(dir, strings.TrimSuffix(n, ".cert")+".key")
			if _, err := os.Stat(key); err != nil {
				key = ""
			}
			if key == "" {
				clients = append(clients, filepath.Join(dir, n))
			} else {
				clients = append(clients, []any{filepath.Join(dir, n), key})
			}
		}
	}
	if len(cas) > 0 {
		fc.CA = cas
	}
	if len(clients) > 0 {
		fc.Client = clients
	}
	t, err := hostTLS(dir, fc)
	if err != nil {
		return HostConfig{}, fmt.Errorf("%w: %s: %v", ErrInvalidOption, dir, err)
	}
	return HostConfig{RootCAs: t.roots, Certificates: t.certs}, nil
}

// orderedHosts returns the keys of the [host."..."] tables of a hosts.toml in the order of
// the file, which is the order their mirrors are tried in, as containerd's getSortedHosts.
func orderedHosts(data []byte) []string {
	var hosts []string
	p := tomlu.Parser{}
	p.Reset(data)
	last := ""
	for p.NextExpression() {
		e := p.Expression()
		if e.Kind != tomlu.Table {
			continue
		}
		var parts []string
		for it := e.Key(); it.Next(); {
			parts = append(parts, string(it.Node().Data))
		}
		if len(parts) < 2 || parts[0] != "host" || parts[1] == last {
			continue
		}
		last = parts[1]
		hosts = append(hosts, last)
	}
	return hosts
}
