package pipeline

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestMaskerSplitsAcrossWrites(t *testing.T) {
	t.Parallel()
	secrets := newSecretSet([]string{"hunter2", "hunter2-long", "s3cr3t"})
	input := "a hunter2 b hunter2-long c hunter2-lon d s3cr3ts3cr3t e hunte"
	want := "a *** b *** c ***-lon d ****** e hunte"
	// Every way of cutting the input into two writes, and byte by byte.
	for cut := 0; cut <= len(input); cut++ {
		var b strings.Builder
		m := newMasker(&b, secrets)
		m.Write([]byte(input[:cut]))
		m.Write([]byte(input[cut:]))
		m.Flush()
		if got := b.String(); got != want {
			t.Fatalf("cut at %d: got %q, want %q", cut, got, want)
		}
	}
	var b strings.Builder
	m := newMasker(&b, secrets)
	for i := range len(input) {
		m.Write([]byte{input[i]})
	}
	m.Flush()
	if got := b.String(); got != want {
		t.Errorf("byte by byte: got %q, want %q", got, want)
	}
}

func TestMaskerHoldsBackOnlyPrefixes(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	m := newMasker(&b, newSecretSet([]string{"topsecret"}))
	m.Write([]byte("line one\nand top"))
	if got, want := b.String(), "line one\nand "; got != want {
		t.Errorf("after a write ending in a prefix: passed on %q, want %q", got, want)
	}
	m.Write([]byte("ping\n"))
	if got, want := b.String(), "line one\nand topping\n"; got != want {
		t.Errorf("after the prefix turned out not to be one: %q, want %q", got, want)
	}
}

func TestSecretSetMultiline(t *testing.T) {
	t.Parallel()
	s := newSecretSet([]string{"-----BEGIN KEY-----\nAAAA\nBBBB\n-----END KEY-----", "", "x"})
	got := s.mask("key: -----BEGIN KEY-----\nAAAA\nBBBB\n-----END KEY----- then AAAA alone, x")
	want := "key: *** then *** alone, ***"
	if got != want {
		t.Errorf("mask = %q, want %q", got, want)
	}
	if got := newSecretSet(nil).mask("nothing"); got != "nothing" {
		t.Errorf("no secrets: %q", got)
	}
}

func TestLineWriter(t *testing.T) {
	t.Parallel()
	type line struct {
		Text string
		Cut  bool
	}
	var lines []line
	w := &lineWriter{emit: func(s string, cut bool) { lines = append(lines, line{s, cut}) }}
	w.Write([]byte("one\ntw"))
	w.Write([]byte("o\r\n\nthree"))
	w.Write([]byte(strings.Repeat("x", MaxLineBytes+3)))
	w.Write([]byte("\n" + strings.Repeat("y", MaxLineBytes) + "\n"))
	w.Flush()
	want := []line{
		{"one", false}, {"two", false}, {"", false},
		{"three" + strings.Repeat("x", MaxLineBytes-5), true}, {"xxxxxxxx", false},
		{strings.Repeat("y", MaxLineBytes), false},
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

// TestLineWriterLongLines: output without a newline is cut into pieces of at most
// MaxLineBytes, at UTF-8 boundaries, with nothing lost, and the writer's memory stays bounded.
func TestLineWriterLongLines(t *testing.T) {
	t.Parallel()
	var (
		got    strings.Builder
		pieces int
	)
	w := &lineWriter{emit: func(s string, cut bool) {
		if len(s) > MaxLineBytes || !utf8.ValidString(s) {
			t.Fatalf("piece of %d bytes, valid UTF-8 %v", len(s), utf8.ValidString(s))
		}
		if !cut {
			t.Fatalf("piece %d not marked cut", pieces)
		}
		got.WriteString(s)
		pieces++
	}}
	chunk := []byte(strings.Repeat("é€𝄞x", 1000)) // characters of 2, 3, 4 and 1 bytes
	var want strings.Builder
	for range 200 { // about 2 MB in one line
		w.Write(chunk)
		want.Write(chunk)
		if len(w.buf) > 2*MaxLineBytes+len(chunk) || cap(w.buf) > 4*MaxLineBytes+2*len(chunk) {
			t.Fatalf("buffer of %d bytes (capacity %d)", len(w.buf), cap(w.buf))
		}
	}
	w.emit = func(s string, cut bool) { got.WriteString(s) }
	w.Flush()
	if got.String() != want.String() {
		t.Errorf("pieces put together differ from what was written (%d and %d bytes)", got.Len(), want.Len())
	}
	if pieces < want.Len()/MaxLineBytes {
		t.Errorf("%d pieces for %d bytes", pieces, want.Len())
	}
	if s := (LogLine{Text: "abc", Cut: true}).String(); !strings.HasSuffix(s, " abc"+CutMark) {
		t.Errorf("String of a cut line = %q, want it to end with %q", s, "abc"+CutMark)
	}
}

func TestParseOutputs(t *testing.T) {
	t.Parallel()
	got, warnings, err := parseOutputs([]byte("version=1.2\nempty=\n\nurl=http://x/?a=b\nnotes<<EOF\nline 1\nline=2\nEOF\nbad line\n=novalue\nversion=1.3\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"version": "1.3", "empty": "", "url": "http://x/?a=b", "notes": "line 1\nline=2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	if len(warnings) != 2 || !strings.HasPrefix(warnings[0], "line 9:") || !strings.HasPrefix(warnings[1], "line 10:") {
		t.Errorf("warnings = %q, want lines 9 and 10", warnings)
	}
	_, warnings, _ = parseOutputs([]byte("a<<END\nnever closed\n"))
	if len(warnings) != 1 || !strings.Contains(warnings[0], "never closed") {
		t.Errorf("unclosed heredoc: warnings = %q", warnings)
	}
}
