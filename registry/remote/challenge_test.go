package remote

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseChallenges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []string
		want []challenge
	}{
		{[]string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`},
			[]challenge{{"bearer", map[string]string{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/busybox:pull"}}}},
		{[]string{`Basic realm="dao-test"`}, []challenge{{"basic", map[string]string{"realm": "dao-test"}}}},
		{[]string{`Basic realm="a", Bearer realm="b" , scope="x y"`},
			[]challenge{{"basic", map[string]string{"realm": "a"}}, {"bearer", map[string]string{"realm": "b", "scope": "x y"}}}},
		{[]string{`Negotiate abc==, Basic`, `BEARER Realm=unquoted,error="in\"sufficient"`},
			[]challenge{{"negotiate", map[string]string{}}, {"basic", map[string]string{}}, {"bearer", map[string]string{"realm": "unquoted", "error": `in"sufficient`}}}},
		{[]string{`Bearer realm="x", realm="second"`}, []challenge{{"bearer", map[string]string{"realm": "x"}}}},
		{[]string{`Bearer realm="unterminated`}, []challenge{{"bearer", map[string]string{"realm": "unterminated"}}}},
		{[]string{"", " , ,", `=`}, nil},
	} {
		got := parseChallenges(tc.in)
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(challenge{})); diff != "" {
			t.Errorf("parseChallenges(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func FuzzParseWWWAuthenticate(f *testing.F) {
	for _, s := range []string{
		`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`,
		`Basic realm="dao-test"`,
		`Basic realm="a", Bearer realm="b" , scope="x y"`,
		`Negotiate abc==, Basic`,
		`Bearer realm="a\"b\\c"`,
		`,,=,"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		chs := parseChallenges([]string{h})
		for _, ch := range chs {
			if ch.scheme == "" || ch.scheme != strings.ToLower(ch.scheme) {
				t.Fatalf("challenge with scheme %q", ch.scheme)
			}
		}
		// What was parsed, written back, parses to the same.
		var parts []string
		for _, ch := range chs {
			s := ch.scheme
			var params []string
			for k, v := range ch.params {
				params = append(params, k+"="+quoteAuthParam(v))
			}
			if len(params) > 0 {
				s += " " + strings.Join(params, ", ")
			}
			parts = append(parts, s)
		}
		again := parseChallenges([]string{strings.Join(parts, ", ")})
		if diff := cmp.Diff(chs, again, cmp.AllowUnexported(challenge{})); diff != "" {
			t.Fatalf("parseChallenges(%q) written back as %q parses differently (-first +again):\n%s", h, strings.Join(parts, ", "), diff)
		}
	})
}
