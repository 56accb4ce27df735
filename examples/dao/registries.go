package main

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/opendao/dao/registry/remote"
)

// registriesConfig is the file of mirrors, plain-HTTP hosts, CAs and credentials, in the
// format of k3s's registries.yaml (with plain_http added), which containerd users know.
type registriesConfig struct {
	Mirrors map[string]mirrorConfig   `yaml:"mirrors"`
	Configs map[string]registryConfig `yaml:"configs"`
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

// loadRegistriesConfig reads and checks the file at path. Errors name the file, and the
// line where the YAML says where.
func loadRegistriesConfig(path string) (*registriesConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registries config: %w", err)
	}
	var cfg registriesConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msg = strings.Join(te.Errors, "; ")
		}
		msg = typeName.ReplaceAllString(msg, "")
		return nil, fmt.Errorf("registries config %s: %s", path, msg)
	}
	for host := range cfg.Mirrors {
		if err := checkHost(host); err != nil {
			return nil, fmt.Errorf("registries config %s: mirrors.%s: %v", path, host, err)
		}
	}
	for host := range cfg.Configs {
		if err := checkHost(host); err != nil {
			return nil, fmt.Errorf("registries config %s: configs.%s: %v", path, host, err)
		}
	}
	return &cfg, nil
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
