package pipeline

import (
	"strings"
	"testing"
)

// fakeScope is a scope with fixed answers.
type fakeScope struct {
	outputs  map[string]map[string]string
	statuses map[string]Status
	matrix   map[string]string
	ok, bad  bool
	cancel   bool
}

func (s *fakeScope) output(step, key string) string { return s.outputs[step][key] }
func (s *fakeScope) status(step string) Status      { return s.statuses[step] }
func (s *fakeScope) matrixValue(key string) string  { return s.matrix[key] }
func (s *fakeScope) success() bool                  { return s.ok }
func (s *fakeScope) failure() bool                  { return s.bad }
func (s *fakeScope) cancelled() bool                { return s.cancel }

func TestExprEval(t *testing.T) {
	t.Parallel()
	sc := &fakeScope{
		outputs: map[string]map[string]string{
			"build": {"version": "1.2", "flag": "false", "n": "3", "quote": "it's"},
		},
		statuses: map[string]Status{"build": StatusSuccess, "lint": StatusFailure},
		matrix:   map[string]string{"go": "1.26"},
		ok:       true,
	}
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{"true", true},
		{"false", false},
		{"success()", true},
		{"failure()", false},
		{"always()", true},
		{"cancelled()", false},
		{"!failure()", true},
		{"!!success()", true},
		{"steps.build.outputs.version == '1.2'", true},
		{"steps.build.outputs.version != '1.2'", false},
		{"steps.build.outputs.version == 1.2", true},
		{"steps.build.outputs.version == 1.20", true}, // numbers compare as numbers
		{"steps.build.outputs.n == 3", true},
		{"steps.build.outputs.n == '3.0'", true},
		{"steps.build.outputs.version == '1.2.0'", false},
		{"steps.build.outputs.missing == ''", true},
		{"steps.build.outputs.missing", false},
		{"steps.build.outputs.flag", false}, // "false" is false
		{"steps.build.outputs.version", true},
		{"steps.build.outputs.quote == 'it''s'", true},
		{"steps.build.status == 'success'", true},
		{"steps.lint.status == 'failure' && always()", true},
		{"matrix.go == '1.26'", true},
		{"success() && steps.build.outputs.version == '1.2' || failure()", true},
		{"failure() || steps.build.outputs.n == 4", false},
		{"failure() || (steps.build.outputs.n == 3 && !cancelled())", true},
		{"!(steps.build.outputs.n == 3)", false},
		{"true == 'true'", true},
		{"false == ''", false},
		{"  success()\n&&\talways()  ", true},
	} {
		x, err := parseExpr(tc.src)
		if err != nil {
			t.Errorf("parseExpr(%q): %v", tc.src, err)
			continue
		}
		if got := x.eval(sc).truth(); got != tc.want {
			t.Errorf("%q = %t, want %t (parsed as %s)", tc.src, got, tc.want, x)
		}
		// The canonical form parses to the same expression.
		y, err := parseExpr(x.String())
		if err != nil || y.String() != x.String() {
			t.Errorf("%q: canonical form %q parses to %v, %v", tc.src, x.String(), y, err)
		}
	}
}

func TestExprPrecedence(t *testing.T) {
	t.Parallel()
	for src, want := range map[string]string{
		"success() || failure() && always()": "(success() || (failure() && always()))",
		"!success() && failure()":            "(!success() && failure())",
		"matrix.a == 'x' || matrix.b != 'y'": "((matrix.a == 'x') || (matrix.b != 'y'))",
	} {
		x, err := parseExpr(src)
		if err != nil {
			t.Fatalf("parseExpr(%q): %v", src, err)
		}
		if got := x.String(); got != want {
			t.Errorf("parseExpr(%q) = %s, want %s", src, got, want)
		}
	}
}

func TestExprErrorsHaveColumns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		src  string
		want string
	}{
		{"", "column 1: empty expression"},
		{"steps.build.outputs.v = '1'", `column 23: "=" is not an operator; compare with "=="`},
		{"success() & failure()", `column 11: '&' is not an operator; use "&&"`},
		{"success() &&", "column 13: unexpected end of expression, want a value"},
		{"(success()", `column 11: unexpected end of expression, want ")"`},
		{"success())", `column 10: unexpected ")", want "&&", "||" or the end`},
		{"'open", "column 1: string is not closed with '"},
		{`"double"`, `column 1: strings are quoted with ', not "`},
		{"steps.build", `column 1: unknown name "steps.build"; want steps.<step>.outputs.<key>`},
		{"success() && env.HOME == 'x'", `column 14: unknown name "env.HOME"`},
		{"exec('rm')", `column 1: unknown function "exec"`},
		{"success(1)", "column 9: success() takes no arguments"},
		{"a == b == c", "unknown name"},
		{"matrix.go == '1' == true", "column 18: comparisons do not chain"},
		{"12abc", `column 1: malformed number "12a"`},
		{"steps.x.outputs.", `column 17: unexpected end of expression, want a name after "."`},
		{"success() ; always()", `column 11: unexpected character ';'`},
		{"matrix.é == 'x'", `column 8: unexpected character 'é'`},
		{strings.Repeat("(", 100) + "true" + strings.Repeat(")", 100), "nested deeper than 64"},
		{strings.Repeat("!", 100) + "true", "nested deeper than 64"},
	} {
		_, err := parseExpr(tc.src)
		if err == nil {
			t.Errorf("parseExpr(%q) = nil error, want %q", tc.src, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseExpr(%q) = %q, want it to contain %q", tc.src, err, tc.want)
		}
	}
}

func TestTemplate(t *testing.T) {
	t.Parallel()
	sc := &fakeScope{
		outputs: map[string]map[string]string{"v": {"tag": "1.2"}},
		matrix:  map[string]string{"os": "linux"},
	}
	for _, tc := range []struct{ src, want string }{
		{"plain text", "plain text"},
		{"", ""},
		{"app:${{ steps.v.outputs.tag }}", "app:1.2"},
		{"${{steps.v.outputs.tag}}-${{ matrix.os }}", "1.2-linux"},
		{"${{ matrix.os == 'linux' }}", "true"},
		{"a ${{ 'b}}c' }} d", "a b}}c d"},
		{"$ {{ not }} an expression", "$ {{ not }} an expression"},
		{"${{ steps.v.outputs.none }}x", "x"},
	} {
		tm, err := parseTemplate(tc.src)
		if err != nil {
			t.Errorf("parseTemplate(%q): %v", tc.src, err)
			continue
		}
		if got := tm.render(sc); got != tc.want {
			t.Errorf("render(%q) = %q, want %q", tc.src, got, tc.want)
		}
	}
	for _, tc := range []struct{ src, want string }{
		{"app:${{ steps.v.outputs.tag", `column 28: unexpected end of expression, want "}}"`},
		{"x ${{ }}", `column 3: empty "${{ }}"`},
		{"x ${{ steps.v.outputs.tag ) }}", `column 27: unexpected ")", want "}}"`},
		{"${{ foo }}", `column 5: unknown name "foo"`},
	} {
		_, err := parseTemplate(tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseTemplate(%q) = %v, want an error containing %q", tc.src, err, tc.want)
		}
	}
}

func TestParseCondition(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"always()", "${{ always() }}", "  ${{ always() }}  "} {
		x, err := parseCondition(src)
		if err != nil || x.String() != "always()" {
			t.Errorf("parseCondition(%q) = %v, %v; want always()", src, x, err)
		}
	}
	if _, err := parseCondition("${{ always() }} && ${{ success() }}"); err == nil {
		t.Error("parseCondition of two ${{ }} = nil error")
	}
}
