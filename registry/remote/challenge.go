package remote

import (
	"strings"
)

// challenge is one authentication challenge of a WWW-Authenticate header, such as
// Bearer realm="https://auth.example/token",service="registry",scope="repository:app:pull".
type challenge struct {
	// scheme is lower case: "basic", "bearer".
	scheme string
	// params are keyed in lower case; the first of a repeated name wins.
	params map[string]string
}

// parseChallenges parses WWW-Authenticate headers (RFC 7235 section 4.1), each of which may
// hold several challenges separated by commas. It is lenient: an unquoted value runs to the
// next comma or space, a token68 (as in "Negotiate abc==") is skipped, and what cannot be
// read is skipped.
func parseChallenges(headers []string) []challenge {
	var out []challenge
	for _, h := range headers {
		p := &authParser{s: h}
		for {
			p.skip(" \t,")
			if p.done() {
				break
			}
			scheme := p.token()
			if scheme == "" {
				p.i++ // not a token character: skip it
				continue
			}
			ch := challenge{scheme: strings.ToLower(scheme), params: make(map[string]string)}
			p.params(ch.params)
			out = append(out, ch)
		}
	}
	return out
}

type authParser struct {
	s string
	i int
}

func (p *authParser) done() bool { return p.i >= len(p.s) }

func (p *authParser) skip(chars string) {
	for p.i < len(p.s) && strings.IndexByte(chars, p.s[p.i]) >= 0 {
		p.i++
	}
}

// token reads an RFC 7230 token.
func (p *authParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// params reads the auth-params after a scheme into m, and stops before the next challenge.
func (p *authParser) params(m map[string]string) {
	for {
		p.skip(" \t")
		save := p.i
		name := p.token()
		p.skip(" \t")
		if name == "" || p.done() || p.s[p.i] != '=' {
			// The next challenge's scheme, or the end.
			p.i = save
			return
		}
		p.i++ // '='
		if p.done() || p.s[p.i] == '=' || p.s[p.i] == ',' {
			// A token68 such as "abc==", or a name without a value: nothing to keep.
			p.skip("=")
			return
		}
		p.skip(" \t")
		var value string
		if !p.done() && p.s[p.i] == '"' {
			value = p.quoted()
		} else {
			start := p.i
			for p.i < len(p.s) && strings.IndexByte(", \t", p.s[p.i]) < 0 {
				p.i++
			}
			value = p.s[start:p.i]
		}
		key := strings.ToLower(name)
		if _, ok := m[key]; !ok {
			m[key] = value
		}
		p.skip(" \t")
		if p.done() || p.s[p.i] != ',' {
			return
		}
		p.i++
	}
}

// quoted reads a quoted-string starting at '"', undoing backslash escapes. An unterminated
// string runs to the end.
func (p *authParser) quoted() string {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '"':
			return b.String()
		case c == '\\' && p.i < len(p.s):
			b.WriteByte(p.s[p.i])
			p.i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// quoteAuthParam quotes v as a quoted-string.
func quoteAuthParam(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}
