package pipeline

import (
	"bytes"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/opendao/dao"
)

// The seed corpora are under testdata/fuzz/<Fuzz function>/. Run a fuzzer with, for example,
//
//	go test -run='^$' -fuzz=FuzzParseExpr -fuzztime=60s ./pipeline/

func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{
		"success()", "steps.build.outputs.version == '1.2' && !failure()",
		"(always() || cancelled()) && matrix.os != 'linux'", "'it''s' == 1.5",
		"${{ x }}", "!!!true", "steps.a-b.status == 'success'",
		// GitHub Actions' expressions.
		"steps.build.outcome == 'failure' && steps.build.conclusion != 'success'",
		"contains(fromJSON('[\"a\", 1]'), matrix.os) || startsWith(env.REF, 'refs/') && endsWith('x', 'X')",
		"format('{0}-{{1}}', toJSON(secrets), join(fromJSON('[1,2]'), '+'))",
		"hashFiles('**/go.sum', '!vendor/**') != '' && 1 <= 2 && 0xff > -2.5e-3 && null == 0",
		"fromJSON(steps.a.outputs.j).x[0].y", "steps['a b'].outputs['k-1'] >= Infinity || NaN < -Infinity",
		"matrix[format('{0}', 'go')]", "!(1 < 2) == false",
		"matrix['NaN'] == matrix['a b']", "fromJSON('{}')['Infinity']",
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
		_, _ = x.eval(&fakeScope{})
		// As a template, the same text parses or fails cleanly.
		if tm, err := parseTemplate("${{ " + src + " }}"); err == nil {
			_, _ = tm.render(&fakeScope{})
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(fullYAML))
	f.Add([]byte("steps:\n  a:\n    image: busybox\n    commands: [true]\n"))
	f.Add([]byte("steps:\n  - name: a\n    image: busybox\n    if: ${{ always() }}\n"))
	f.Add([]byte("steps:\n  a: {image: busybox, needs: [b]}\n  b: {image: busybox, needs: [a]}\n"))
	f.Add([]byte("x: &a [*a]\n"))
	f.Add([]byte("steps:\n  a:\n    image: busybox\n    commands:\n   - echo\n"))
	f.Add([]byte("steps:\n  a:\n    image: busybox\n    if: \"always()\n"))
	f.Add([]byte("steps:\n  a: {image: busybox}\n---\nsteps: {}\n"))
	f.Add([]byte("steps:\n  - name: a\n    image: [x]\n  - name: a\n    imag: busybox\n    needs: [a, b]\n"))
	f.Add([]byte("steps:\n  a:\n    image: busybox\n    if: 'steps.a.outputs.x = ''y'''\n    commands: [\"${{ matrix.é }}\"]\n"))
	// GitHub Actions' and Woodpecker's spellings.
	f.Add([]byte("steps:\n  a:\n    image: busybox\n    strategy: {matrix: {v: [\"1\"], include: [{v: \"2\"}], exclude: [{v: \"1\"}]}, max-parallel: 1, fail-fast: false}\n    shell: bash\n    run: |\n      echo ${{ matrix.v }}\n    timeout-minutes: 1.5\n    continue-on-error: true\n    working-directory: src\n    upload: {name: \"a-${{ matrix.v }}\", paths: [out]}\n  b:\n    image: busybox\n    depends_on: [a]\n    environment: {X: \"${{ toJSON(steps.a.outputs) }}\"}\n    when: [{status: failure}, {status: [success]}]\n    download: [a-2]\n    commands: [true]\n"))
	f.Add([]byte("steps:\n  a:\n    image: busybox\n    run: x\n    commands: [y]\n    timeout: 1m\n    timeout-minutes: 2\n    uses: actions/checkout@v4\n    when: {branch: main}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if p != nil {
				t.Fatalf("Parse returned a pipeline and an error: %v", err)
			}
			checkPositions(t, data, err)
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

var (
	positionPattern = regexp.MustCompile(`\(line (\d+)(?:, column (\d+))?\)$`)
	yamlLineBreak   = regexp.MustCompile("\r\n|[\r\n\u0085\u2028\u2029]")
)

// checkPositions checks that every problem of a Parse error names a field and a reason, and
// that its line and column, if any, are in the file (or just past its end).
func checkPositions(t *testing.T, data []byte, err error) {
	t.Helper()
	var verr *dao.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Parse error %T (%v), want *dao.ValidationError", err, err)
	}
	lines := yamlLineBreak.Split(string(data), -1)
	for _, fe := range verr.Errors {
		if fe.Field == "" || fe.Reason == "" {
			t.Fatalf("problem without a field or a reason: %q", fe)
		}
		m := positionPattern.FindStringSubmatch(fe.Reason)
		if m == nil {
			continue
		}
		line, _ := strconv.Atoi(m[1])
		if line < 1 || line > len(lines)+1 {
			t.Fatalf("%v: line %d of a file of %d lines", fe, line, len(lines))
		}
		if m[2] == "" || line > len(lines) {
			continue
		}
		if col, _ := strconv.Atoi(m[2]); col < 1 || col > utf8.RuneCountInString(lines[line-1])+1 {
			t.Fatalf("%v: column %d of a line of %d characters", fe, col, utf8.RuneCountInString(lines[line-1]))
		}
	}
}

// FuzzLines: a step's output comes out as lines that, put together, are what was written,
// cut into parts of at most the longest line (MaxLineBytes; here a shorter one, from 1 to
// 64), at UTF-8 boundaries where the text is UTF-8, whatever the writes.
func FuzzLines(f *testing.F) {
	f.Add([]byte("one\ntwo\r\n\nthree"), 2, 16)
	f.Add([]byte("ééé€€𝄞𝄞\r\nxxxxxxxxxx\n"), 7, 3)
	f.Add([]byte("xxx\r\nyy"), 3, 3)
	f.Fuzz(func(t *testing.T, text []byte, cut, max int) {
		if max < 1 || max > 64 {
			return
		}
		cut = min(cut, len(text))
		if cut < 0 {
			cut = 0
		}
		var got bytes.Buffer
		w := &lineWriter{max: max, emit: func(s string, cut bool) {
			if len(s) > max {
				t.Fatalf("a line of %d bytes, longer than %d", len(s), max)
			}
			if cut && max >= utf8.UTFMax && utf8.Valid(text) && !utf8.ValidString(s) {
				t.Fatalf("a cut line %q that is not UTF-8", s)
			}
			got.WriteString(s)
			if !cut {
				got.WriteByte('\n')
			}
		}}
		w.Write(text[:cut])
		w.Write(text[cut:])
		w.Flush()
		want := bytes.ReplaceAll(text, []byte("\r\n"), []byte("\n"))
		if len(want) > 0 && !bytes.HasSuffix(want, []byte("\n")) {
			want = append(want, '\n')
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("lines put together: %q, want %q", got.Bytes(), want)
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
