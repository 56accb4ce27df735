package pipeline

import (
	"strings"
	"testing"
)

// The seed corpora are under testdata/fuzz/<Fuzz function>/. Run a fuzzer with, for example,
//
//	go test -run='^$' -fuzz=FuzzParseExpr -fuzztime=60s ./pipeline/

func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{
		"success()", "steps.build.outputs.version == '1.2' && !failure()",
		"(always() || cancelled()) && matrix.os != 'linux'", "'it''s' == 1.5",
		"${{ x }}", "!!!true", "steps.a-b.status == 'success'",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		x, err := parseExpr(src)
		if err != nil {
			e, ok := err.(*exprError)
			if !ok {
				t.Fatalf("parseExpr(%q) error %T, want *exprError", src, err)
			}
			if e.col < 1 || e.col > len(src)+1 {
				t.Fatalf("parseExpr(%q): column %d outside 1-%d", src, e.col, len(src)+1)
			}
			return
		}
		// The canonical form parses to itself, and evaluating never panics.
		canon := x.String()
		y, err := parseExpr(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, src, err)
		}
		if y.String() != canon {
			t.Fatalf("canonical form of %q: %q, then %q", src, canon, y.String())
		}
		_ = x.eval(&fakeScope{})
		// As a template, the same text parses or fails cleanly.
		if tm, err := parseTemplate("${{ " + src + " }}"); err == nil {
			_ = tm.render(&fakeScope{})
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(fullYAML))
	f.Add([]byte("steps:\n  a:\n    image: busybox\n    commands: [true]\n"))
	f.Add([]byte("steps:\n  - name: a\n    image: busybox\n    if: ${{ always() }}\n"))
	f.Add([]byte("steps:\n  a: {image: busybox, needs: [b]}\n  b: {image: busybox, needs: [a]}\n"))
	f.Add([]byte("x: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if p != nil {
				t.Fatalf("Parse returned a pipeline and an error: %v", err)
			}
			return
		}
		// What Parse accepts is valid, and each step's strings render.
		if err := p.Validate(); err != nil {
			t.Fatalf("Parse accepted a pipeline that Validate refuses: %v", err)
		}
		for i := range p.Steps {
			if _, err := p.Steps[i].render(&fakeScope{}); err != nil {
				t.Fatalf("step %s does not render: %v", p.Steps[i].Name, err)
			}
		}
	})
}

func FuzzMask(f *testing.F) {
	f.Add("a secret here and a secr", "secret", 9)
	f.Add("xxxxxx", "xx", 3)
	f.Fuzz(func(t *testing.T, text, secret string, cut int) {
		if secret == "" || strings.Contains(secret, Mask[:1]) || strings.ContainsAny(secret, "\r\n") {
			return
		}
		if cut < 0 || cut > len(text) {
			cut = len(text) / 2
		}
		var b strings.Builder
		m := newMasker(&b, newSecretSet([]string{secret}))
		m.Write([]byte(text[:cut]))
		m.Write([]byte(text[cut:]))
		m.Flush()
		got := b.String()
		if want := strings.ReplaceAll(text, secret, Mask); got != want {
			t.Fatalf("mask(%q, %q) cut at %d = %q, want %q", text, secret, cut, got, want)
		}
	})
}
