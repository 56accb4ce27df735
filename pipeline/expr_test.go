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
	env      map[string]string
	secrets  map[string]string
	hash     string
	ok, bad  bool
	cancel   bool
}

func (s *fakeScope) stepState(step string) (stepState, bool) {
	st, ok := s.statuses[step]
	if _, has := s.outputs[step]; !ok && !has {
		return stepState{}, false
	}
	if st == "" {
		st = StatusSuccess
	}
	return stepState{status: st, outcome: outcomeOf(st), conclusion: outcomeOf(st), outputs: s.outputs[step]}, true
}
func (s *fakeScope) matrixValues() map[string]string    { return s.matrix }
func (s *fakeScope) envValues() map[string]string       { return s.env }
func (s *fakeScope) secretValues() map[string]string    { return s.secrets }
func (s *fakeScope) hashFiles([]string) (string, error) { return s.hash, nil }
func (s *fakeScope) success() bool                      { return s.ok }
func (s *fakeScope) failure() bool                      { return s.bad }
func (s *fakeScope) cancelled() bool                    { return s.cancel }

// evalString parses and evaluates src in sc.
func evalString(t *testing.T, sc scope, src string) (value, error) {
	t.Helper()
	x, err := parseExpr(src)
	if err != nil {
		t.Fatalf("parseExpr(%q): %v", src, err)
	}
	// The canonical form parses to the same expression.
	y, err := parseExpr(x.String())
	if err != nil || y.String() != x.String() {
		t.Errorf("%q: canonical form %q parses to %v, %v", src, x.String(), y, err)
	}
	return x.eval(sc)
}

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
		{"steps.build.outputs.n == '3.0'", false}, // two strings compare as strings
		{"steps.build.outputs.n == 3.0", true},
		{"steps.build.outputs.version == '1.2.0'", false},
		{"steps.build.outputs.missing == ''", true},
		{"steps.build.outputs.missing", false},
		{"steps.build.outputs.flag", true}, // "false" is a string, and not empty
		{"steps.build.outputs.flag == 'false'", true},
		{"steps.build.outputs.version", true},
		{"steps.build.outputs.quote == 'it''s'", true},
		{"steps.build.status == 'success'", true},
		{"steps.lint.status == 'failure' && always()", true},
		{"matrix.go == '1.26'", true},
		{"success() && steps.build.outputs.version == '1.2' || failure()", true},
		{"failure() || steps.build.outputs.n == 4", false},
		{"failure() || (steps.build.outputs.n == 3 && !cancelled())", true},
		{"!(steps.build.outputs.n == 3)", false},
		{"true == 'true'", false}, // 1 == NaN
		{"false == ''", true},     // 0 == 0
		{"  success()\n&&\talways()  ", true},
	} {
		v, err := evalString(t, sc, tc.src)
		if err != nil {
			t.Errorf("%q: %v", tc.src, err)
		}
		if got := v.truth(); got != tc.want {
			t.Errorf("%q = %v (%t), want %t", tc.src, v, got, tc.want)
		}
	}
}

func TestExprPrecedence(t *testing.T) {
	t.Parallel()
	for src, want := range map[string]string{
		"success() || failure() && always()": "(success() || (failure() && always()))",
		"!success() && failure()":            "(!success() && failure())",
		"!matrix.a == 'x'":                   "(!matrix.a == 'x')",
		"1 < 2 == true":                      "((1 < 2) == true)",
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
		{"success())", `column 10: unexpected ")", want an operator or the end`},
		{"'open", "column 1: string is not closed with '"},
		{`"double"`, `column 1: strings are quoted with ', not "`},
		{"steps", `column 1: name a step: steps.<step>.outputs.<key>`},
		{"steps[matrix.x].outcome", `column 1: name a step: steps.<step>.outputs.<key>`},
		{"steps.build.output.x", `column 1: unknown name "steps.build.output.x"; want steps.<step>.outputs.<key>`},
		{"steps.build.outputs.x.y", `column 1: "steps.build.outputs.x.y": an output is a string; it has no "y"`},
		{"success() && github.ref == 'x'", `column 14: unknown name "github"; did you mean env.<name> or steps.<step>.outputs.<key>`},
		{"needs.build.outputs.v", `column 1: unknown name "needs"; did you mean steps.<step>`},
		{"exec('rm')", `column 1: unknown function "exec"`},
		{"startswith('a', 'b')", `column 1: unknown function "startswith"; did you mean startsWith()?`},
		{"sucess()", `column 1: unknown function "sucess"; did you mean success()?`},
		{"success(1)", "column 1: success() takes no arguments"},
		{"contains('a')", "column 1: contains() takes 2 arguments, got 1"},
		{"join()", "column 1: join() takes 1 or 2 arguments, got 0"},
		{"format()", "column 1: format() takes at least 1 arguments, got 0"},
		{"contains('a' 'b')", `column 14: unexpected string, want "," or ")"`},
		{"a == b == c", "unknown name"},
		{"env.*", `column 5: object filters (".*") are not supported`},
		{"1e999", "column 1: number 1e999 is out of range"},
		{"01", `column 1: malformed number "01"`},
		{"matrix[0", `column 9: unexpected end of expression, want "]"`},
		{"12xyz", `column 1: malformed number "12x"`},
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
		{"${{ null }}|${{ 1.50 }}|${{ 0xff }}|${{ -2.99e-2 }}|${{ 1e21 }}", "|1.5|255|-0.0299|1e+21"},
		{"${{ fromJSON('[1]') }} ${{ fromJSON('{}') }}", "Array Object"},
		{"${{ format('{0}-{1}', matrix.os, 2) }}", "linux-2"},
	} {
		tm, err := parseTemplate(tc.src)
		if err != nil {
			t.Errorf("parseTemplate(%q): %v", tc.src, err)
			continue
		}
		if got, err := tm.render(sc); err != nil || got != tc.want {
			t.Errorf("render(%q) = %q, %v; want %q", tc.src, got, err, tc.want)
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

// TestExprGitHubSemantics checks what GitHub Actions documents of its expressions: loose
// comparisons that coerce to numbers, strings compared ignoring case, truthiness, && and ||
// giving an operand, and the functions.
func TestExprGitHubSemantics(t *testing.T) {
	t.Parallel()
	sc := &fakeScope{
		outputs:  map[string]map[string]string{"build": {"version": "1.2", "list": `["a","b"]`, "n": "10"}},
		statuses: map[string]Status{"build": StatusSuccess, "lint": StatusTimedOut},
		matrix:   map[string]string{"go": "1.26", "os": "Linux"},
		env:      map[string]string{"MODE": "release"},
		secrets:  map[string]string{"TOKEN": "s3cr\"et"},
		hash:     "abc123",
		ok:       true,
	}
	for _, tc := range []struct{ src, want string }{
		// Comparisons and coercions.
		{"1 < 2", "true"},
		{"2 <= 2", "true"},
		{"3 > 10", "false"},
		{"'3' > '10'", "true"}, // two strings compare as strings
		{"steps.build.outputs.n > 9", "true"},
		{"'abc' < 'ABD'", "true"}, // ignoring case
		{"'ABC' == 'abc'", "true"},
		{"'abc' != 'abd'", "true"},
		{"null == 0", "true"},
		{"null == ''", "true"},
		{"true == 1", "true"},
		{"false == 0", "true"},
		{"' 0xff ' == 255", "true"},
		{"'1e3' == 1000", "true"},
		{"'abc' == 0", "false"}, // NaN
		{"NaN == NaN", "false"},
		{"fromJSON('[]') == fromJSON('[]')", "false"}, // arrays are equal only to themselves
		{"fromJSON('{}') < fromJSON('{}')", "false"},
		{"Infinity > 1e300", "true"},
		{"-Infinity < -1", "true"},
		{"true > false", "true"},
		// Truthiness, && and ||.
		{"!''", "true"},
		{"!0", "true"},
		{"!-0", "true"},
		{"!null", "true"},
		{"!NaN", "true"},
		{"!'false'", "false"},
		{"!fromJSON('[]')", "false"},
		{"'a' && 'b'", "b"},
		{"'' && 'b'", ""},
		{"0 || 'fallback'", "fallback"},
		{"matrix.os == 'linux' && 'prod' || 'dev'", "prod"},
		{"matrix.os == 'mac' && 'prod' || 'dev'", "dev"},
		// Contexts.
		{"steps.build.outcome", "success"},
		{"steps.lint.outcome", "failure"},
		{"steps.lint.conclusion", "failure"},
		{"steps.lint.status", "timed-out"},
		{"steps['build'].outputs['version']", "1.2"},
		{"steps.build.outputs[format('v{0}', 'ersion')]", "1.2"},
		{"steps.build.outputs.missing", ""},
		{"matrix.GO", "1.26"}, // properties ignore case
		{"matrix['os']", "Linux"},
		{"env.MODE", "release"},
		{"env.NONE == null", "true"},
		{"secrets.TOKEN", "s3cr\"et"},
		// Functions.
		{"contains('Hello world', 'WORLD')", "true"},
		{"contains(fromJSON(steps.build.outputs.list), 'B')", "true"},
		{"contains(fromJSON(steps.build.outputs.list), 'c')", "false"},
		{"contains(fromJSON('[1, 2]'), '2')", "true"},
		{"startsWith('Hello', 'he')", "true"},
		{"endsWith('Hello', 'LO')", "true"},
		{"endsWith('Hello', 'x')", "false"},
		{"format('{0} {1} {0}', 'a', 2)", "a 2 a"},
		{"format('{{0}} is {0}', true)", "{0} is true"},
		{"join(fromJSON('[\"a\", 1, true, null]'))", "a,1,true,"},
		{"join(fromJSON(steps.build.outputs.list), ' + ')", "a + b"},
		{"join('one')", "one"},
		{"toJSON('x')", `"x"`},
		{"toJSON(fromJSON('{\"b\": [1, 2.5], \"a\": null}'))", "{\n  \"a\": null,\n  \"b\": [\n    1,\n    2.5\n  ]\n}"},
		{"toJSON(matrix)", "{\n  \"go\": \"1.26\",\n  \"os\": \"Linux\"\n}"},
		{"toJSON(fromJSON('[]'))", "[]"},
		{"toJSON('<&>')", `"<&>"`},
		{"fromJSON('42') == 42", "true"},
		{"fromJSON('{\"a\": {\"b\": [7]}}').a.b[0]", "7"},
		{"fromJSON('[1, 2]')[5]", ""},
		{"fromJSON('true')", "true"},
		{"hashFiles('**/go.sum', '!vendor/**')", "abc123"},
		{"success() && !cancelled()", "true"},
	} {
		v, err := evalString(t, sc, tc.src)
		if err != nil {
			t.Errorf("%q: %v", tc.src, err)
			continue
		}
		if got := v.text(); got != tc.want {
			t.Errorf("%q = %q, want %q", tc.src, got, tc.want)
		}
	}
}

func TestExprEvalErrorsHaveColumns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ src, want string }{
		{"fromJSON('{')", `column 1: fromJSON: "{" is not JSON`},
		{"fromJSON('1 2')", `column 1: fromJSON: "1 2" is more than one JSON value`},
		{"true && format('{1}', 'a')", `column 9: format: "{1}": {1}, but there are 1 arguments after the format`},
		{"format('{x}')", `column 1: format: "{x}": "{x}" is not an argument such as {0}`},
		{"format('{0')", `column 1: format: "{0": "{" at byte 0 is not closed; write {{ for a brace`},
		{"format('}')", `column 1: format: "}": "}" at byte 0 is not closing a {; write }} for a brace`},
	} {
		_, err := evalString(t, &fakeScope{}, tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.src, err, tc.want)
		}
	}
	// Short-circuits: the right side of a decided && or || is not evaluated.
	if v, err := evalString(t, &fakeScope{}, "false && fromJSON('{')"); err != nil || v.truth() {
		t.Errorf("false && fromJSON('{') = %v, %v; want false, nil", v, err)
	}
}

func TestParseNumber(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]float64{
		"0": 0, "-0": 0, "12": 12, " 12 ": 12, "+1.5": 1.5, "-2.99e-2": -0.0299, "1E3": 1000,
		"0xff": 255, "0XFF": -1, "0o10": 8, "-0x10": -16,
	} {
		got, ok := parseNumber(s)
		if want == -1 {
			if ok {
				t.Errorf("parseNumber(%q) = %v, want not a number", s, got)
			}
			continue
		}
		if !ok || got != want {
			t.Errorf("parseNumber(%q) = %v, %t; want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "01", "1.", ".5", "1e", "0x", "abc", "1_000", "0x-1"} {
		if got, ok := parseNumber(s); ok {
			t.Errorf("parseNumber(%q) = %v, want not a number", s, got)
		}
	}
}
