package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/opendao/dao/registry/remote"
)

// registriesConfig is the file of mirrors, plain-HTTP hosts, CAs and credentials, in the
// format of k3s's registries.yaml (with plain_http added), which containerd users know.
type registriesConfig struct {
	Mirrors map[string]mirrorConfig   `yaml:"mirrors"`
	Configs map[string]registryConfig `yaml:"configs"`

	// path is the file's, for errors; "" for no file.
	path string `yaml:"-"`
}

type mirrorConfig struct {
	// Endpoint lists the mirrors of a registry, tried in order before it. An endpoint on
	// the registry's own host says how to reach the registry itself (http:// for plain HTTP).
	Endpoint []string `yaml:"endpoint"`
}

type registryConfig struct {
	PlainHTTP bool `yaml:"plain_http"`
	TLS       struct {
		CAFile             string `yaml:"ca_file"`
		InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	} `yaml:"tls"`
	Auth struct {
		Username      string `yaml:"username"`
		Password      string `yaml:"password"`
		IdentityToken string `yaml:"identitytoken"`
	} `yaml:"auth"`
}

// loadRegistriesConfig reads and checks the file at path. An error names the file, the line,
// the key (as a path: configs.registry.local:5000.tls.ca_file) and what was expected there,
// one per line when there are several; it matches errRegistriesConfig.
func loadRegistriesConfig(path string) (*registriesConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registries config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &registriesConfigError{path: path, problems: []string{strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	cfg := registriesConfig{path: path}
	if len(doc.Content) == 0 {
		return &cfg, nil // an empty file
	}
	root := doc.Content[0]
	if problems := checkConfigNode(root, reflect.TypeFor[registriesConfig](), ""); len(problems) > 0 {
		return nil, &registriesConfigError{path: path, problems: problems}
	}
	if err := root.Decode(&cfg); err != nil {
		// checkConfigNode has seen every value: this is not expected.
		return nil, &registriesConfigError{path: path, problems: []string{typeName.ReplaceAllString(err.Error(), "")}}
	}
	for host := range cfg.Mirrors {
		if err := checkHost(host); err != nil {
			return nil, &registriesConfigError{path: path, problems: []string{fmt.Sprintf("mirrors.%s: %v", host, err)}}
		}
	}
	for host := range cfg.Configs {
		if err := checkHost(host); err != nil {
			return nil, &registriesConfigError{path: path, problems: []string{fmt.Sprintf("configs.%s: %v", host, err)}}
		}
	}
	cfg.path = path
	return &cfg, nil
}

// errRegistriesConfig is matched by the errors of loadRegistriesConfig about the file's content.
var errRegistriesConfig = errors.New("registries config")

// registriesConfigError is what is wrong with a registries config: one problem per line.
type registriesConfigError struct {
	path     string
	problems []string
}

func (e *registriesConfigError) Error() string {
	if len(e.problems) == 1 {
		return "registries config " + e.path + ": " + e.problems[0]
	}
	return "registries config " + e.path + ":\n  " + strings.Join(e.problems, "\n  ")
}

func (e *registriesConfigError) Is(target error) bool { return target == errRegistriesConfig }

// checkConfigNode checks node against the Go type t that it is to be decoded into, and returns
// the problems it finds, each "line N: KEY: what is wrong", in the words of the file rather
// than of Go: unknown keys (with the known ones), values of the wrong kind.
func checkConfigNode(n *yaml.Node, t reflect.Type, key string) []string {
	at := func(n *yaml.Node, key, format string, args ...any) string {
		where := fmt.Sprintf("line %d", n.Line)
		if key != "" {
			where += ": " + key
		}
		return where + ": " + fmt.Sprintf(format, args...)
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // an empty value: the zero value, as yaml decodes it
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return []string{at(n, key, "want a mapping with keys %s, got %s", strings.Join(cfgKeys(t), ", "), cfgDescribe(n))}
		}
		var problems []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := cfgField(t, k.Value)
			if !ok {
				problems = append(problems, fmt.Sprintf("line %d: field %s not found%s; the keys here are %s", k.Line, cfgKeyPath(key, k.Value), cfgDidYouMean(k.Value, cfgKeys(t)), strings.Join(cfgKeys(t), ", ")))
				continue
			}
			problems = append(problems, checkConfigNode(v, f.Type, cfgKeyPath(key, k.Value))...)
		}
		return problems
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return []string{at(n, key, "want a mapping of registry hosts (such as docker.io:), got %s", cfgDescribe(n))}
		}
		var problems []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			problems = append(problems, checkConfigNode(v, t.Elem(), cfgKeyPath(key, k.Value))...)
		}
		return problems
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return []string{at(n, key, "want a list, such as [\"https://mirror.example.com\"], got %s", cfgDescribe(n))}
		}
		var problems []string
		for i, e := range n.Content {
			problems = append(problems, checkConfigNode(e, t.Elem(), fmt.Sprintf("%s[%d]", key, i))...)
		}
		return problems
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			return []string{at(n, key, "want true or false, got %s", cfgDescribe(n))}
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return []string{at(n, key, "want a string, got %s", cfgDescribe(n))}
		}
	}
	return nil
}

// cfgDescribe says what a node is, for an error: "\"yes please\"", "a list", "a mapping".
func cfgDescribe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

// cfgKeyPath returns the key path key.k.
func cfgKeyPath(key, k string) string {
	if key == "" {
		return k
	}
	return key + "." + k
}

// cfgKeys returns the yaml keys of the fields of struct t.
func cfgKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

// cfgField returns the field of struct t whose yaml key is k.
func cfgField(t reflect.Type, k string) (reflect.StructField, bool) {
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name == k {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// cfgDidYouMean returns " (did you mean K?)" for the known key closest to k, if one is close.
func cfgDidYouMean(k string, known []string) string {
	best, bestD := "", 3
	for _, c := range known {
		if d := editDistance(k, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + best + "?)"
}

// typeName matches the Go type yaml names in its errors, which means nothing to a reader of
// the file.
var typeName = regexp.MustCompile(` in type main\.\w+| into main\.\w+`)

func checkHost(host string) error {
	switch {
	case host == "*":
		return errors.New("wildcard registries are not supported: name each registry")
	case host == "" || strings.ContainsAny(host, "/ ") || strings.Contains(host, "://"):
		return errors.New("want a registry host[:port], such as docker.io or registry.local:5000")
	}
	return nil
}

// hosts turns the config and the --insecure hosts into the registry client's host settings
// and credentials.
func (c *registriesConfig) hosts(insecure []string) (map[string]remote.HostConfig, map[string]remote.Credentials, error) {
	hosts := map[string]remote.HostConfig{}
	creds := map[string]remote.Credentials{}
	tlsOf := func(host string) (*x509.CertPool, bool, error) {
		rc, ok := c.Configs[host]
		if !ok || rc.TLS.CAFile == "" {
			return nil, ok && rc.TLS.InsecureSkipVerify, nil
		}
		pem, err := os.ReadFile(rc.TLS.CAFile)
		if err != nil {
			return nil, false, fmt.Errorf("configs.%s.tls.ca_file: %w", host, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, false, fmt.Errorf("configs.%s.tls.ca_file: %s holds no PEM certificate", host, rc.TLS.CAFile)
		}
		return pool, rc.TLS.InsecureSkipVerify, nil
	}
	for _, host := range sortedKeys(c.Configs) {
		rc := c.Configs[host]
		hc := hosts[host]
		hc.PlainHTTP = rc.PlainHTTP
		var err error
		if hc.RootCAs, hc.SkipVerify, err = tlsOf(host); err != nil {
			return nil, nil, err
		}
		hosts[host] = hc
		if a := rc.Auth; a.Username != "" || a.Password != "" || a.IdentityToken != "" {
			creds[host] = remote.Credentials{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken}
		}
	}
	for _, host := range insecure {
		if err := checkHost(host); err != nil {
			return nil, nil, fmt.Errorf("--insecure %q: %v", host, err)
		}
		hc := hosts[host]
		hc.PlainHTTP = true
		hosts[host] = hc
	}
	for _, host := range sortedKeys(c.Mirrors) {
		hc := hosts[host]
		for i, ep := range c.Mirrors[host].Endpoint {
			u, err := url.Parse(ep)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, nil, fmt.Errorf("mirrors.%s.endpoint[%d]: %q is not an http:// or https:// URL", host, i, ep)
			}
			if u.Host == host {
				// The registry itself, as k3s writes it: its scheme says how to reach it.
				hc.PlainHTTP = hc.PlainHTTP || u.Scheme == "http"
				continue
			}
			m := remote.Mirror{URL: strings.TrimSuffix(ep, "/")}
			if m.RootCAs, m.SkipVerify, err = tlsOf(u.Host); err != nil {
				return nil, nil, err
			}
			hc.Mirrors = append(hc.Mirrors, m)
		}
		hosts[host] = hc
	}
	return hosts, creds, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// defaultHostsDir is containerd's registry hosts directory (the config_path of its CRI
// registry settings, and ctr's --hosts-dir), read when it exists and no other is given.
const defaultHostsDir = "/etc/containerd/certs.d"

// hostsDirOrDefault returns dir, or when dir is "" the default hosts directory if it exists
// on this machine, else "" (none). A CLI's --hosts-dir flag (and the agent's) gives dir.
func hostsDirOrDefault(dir string) string {
	if dir != "" {
		return dir
	}
	if fi, err := os.Stat(defaultHostsDir); err == nil && fi.IsDir() {
		return defaultHostsDir
	}
	return ""
}

// registryHosts returns the registry client's host settings and credentials from, in
// order of precedence, lowest first: containerd's hosts directory hostsDir ("" for none;
// see remote.LoadHostsDir), this registries config, and the --insecure hosts. A host that
// both the hosts directory and this config name takes this config's settings (mirrors,
// plain HTTP, TLS) as a whole, not a mix of the two: this file is Dao's own, the more
// specific. An --insecure host is then reached over plain HTTP whatever either says.
// Errors name the file (and the line, where the file says where) or the flag at fault, and
// need no prefix.
func (c *registriesConfig) registryHosts(hostsDir string, insecure []string) (map[string]remote.HostConfig, map[string]remote.Credentials, error) {
	hosts := map[string]remote.HostConfig{}
	if hostsDir != "" {
		dirHosts, err := remote.LoadHostsDir(hostsDir)
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), remote.ErrInvalidOption.Error()+": ")
			return nil, nil, &registriesHostsError{msg: "hosts directory " + hostsDir + ": " + strings.TrimPrefix(msg, hostsDir+"/"), err: err}
		}
		maps.Copy(hosts, dirHosts)
	}
	own, creds, err := c.hosts(nil)
	if err != nil {
		if c.path != "" {
			err = &registriesConfigError{path: c.path, problems: []string{err.Error()}}
		}
		return nil, nil, err
	}
	maps.Copy(hosts, own)
	for _, host := range insecure {
		if err := checkHost(host); err != nil {
			return nil, nil, fmt.Errorf("--insecure %q: %v", host, err)
		}
		hc := hosts[host]
		hc.PlainHTTP = true
		if rest, ok := strings.CutPrefix(hc.Server, "https://"); ok {
			hc.Server = "http://" + rest
		}
		hosts[host] = hc
	}
	return hosts, creds, nil
}

// registriesHostsError is an error of the hosts directory, without the registry client's
// prefix; it matches the client's error.
type registriesHostsError struct {
	msg string
	err error
}

func (e *registriesHostsError) Error() string { return e.msg }
func (e *registriesHostsError) Unwrap() error { return e.err }

// dockerConfigOption returns the registry client option that reads docker's config.json
// (its "auths" and credential helpers) where docker finds it, $DOCKER_CONFIG/config.json
// or ~/.docker/config.json, none if it is missing; and that path, for a log line ("" when
// there is none).
func dockerConfigOption() (remote.Option, string) {
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		if home, err := os.UserHomeDir(); err == nil {
			dir = filepath.Join(home, ".docker")
		}
	}
	path := ""
	if p := filepath.Join(dir, "config.json"); dir != "" {
		if _, err := os.Stat(p); err == nil {
			path = p
		}
	}
	return remote.WithDockerConfig(""), path
}
