package pipeline

import (
	"io"
	"slices"
	"strings"
)

// Mask replaces a secret wherever it appears.
const Mask = "***"

// secretSet is the secrets of a run, longest first, with every line of a multi-line secret
// as a secret of its own (a step may print a key file line by line).
type secretSet []string

func newSecretSet(values []string) secretSet {
	var s secretSet
	add := func(v string) {
		if v != "" && !slices.Contains(s, v) {
			s = append(s, v)
		}
	}
	for _, v := range values {
		add(v)
		if strings.ContainsAny(v, "\r\n") {
			for _, line := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' }) {
				add(strings.TrimSpace(line))
			}
		}
	}
	slices.SortFunc(s, func(a, b string) int { return len(b) - len(a) })
	return s
}

// mask returns text with every occurrence of a secret replaced by Mask.
func (s secretSet) mask(text string) string {
	if len(s) == 0 {
		return text
	}
	m := &masker{secrets: s}
	var b strings.Builder
	m.w = &b
	_, _ = m.Write([]byte(text))
	_ = m.Flush()
	return b.String()
}

// masker is a writer that passes on what is written to it with every secret replaced by Mask.
// A secret split across two writes is still replaced: bytes that could begin a secret are
// held back until the next write shows whether they do. Flush passes on what is held back.
type masker struct {
	w       io.Writer
	secrets secretSet // longest first
	held    []byte
}

func newMasker(w io.Writer, s secretSet) *masker { return &masker{w: w, secrets: s} }

// Write masks p and writes what is certain; it reports len(p) written unless w fails.
func (m *masker) Write(p []byte) (int, error) {
	if len(m.secrets) == 0 {
		if _, err := m.w.Write(p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	m.held = append(m.held, p...)
	if err := m.process(false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes what is held back: at the end of the stream, a prefix of a secret is not a
// secret.
func (m *masker) Flush() error { return m.process(true) }

func (m *masker) process(final bool) error {
	buf := m.held
	var out []byte
	i, flushed := 0, 0
	for i < len(buf) {
		rest := buf[i:]
		// Could a secret longer than what is here still start at i? Then wait for more.
		if !final && m.couldStart(rest) {
			break
		}
		if n := m.matchAt(rest); n > 0 {
			out = append(out, buf[flushed:i]...)
			out = append(out, Mask...)
			i += n
			flushed = i
			continue
		}
		i++
	}
	out = append(out, buf[flushed:i]...)
	m.held = append(m.held[:0], buf[i:]...)
	if len(out) == 0 {
		return nil
	}
	_, err := m.w.Write(out)
	return err
}

// matchAt returns the length of the longest secret that starts rest, or 0.
func (m *masker) matchAt(rest []byte) int {
	for _, s := range m.secrets { // longest first
		if len(rest) >= len(s) && string(rest[:len(s)]) == s {
			return len(s)
		}
	}
	return 0
}

// couldStart reports whether rest is a proper prefix of a secret: more input could make it
// one, or a longer one than matches now.
func (m *masker) couldStart(rest []byte) bool {
	for _, s := range m.secrets {
		if len(rest) < len(s) && strings.HasPrefix(s, string(rest)) {
			return true
		}
	}
	return false
}
