package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao"
)

// TestParseGitHubAndWoodpeckerSpellings: a file written with the keys GitHub Actions and
// Woodpecker users type reads as the same pipeline as one with Dao's keys.
func TestParseGitHubAndWoodpeckerSpellings(t *testing.T) {
	t.Parallel()
	const ours = `
steps:
  build:
    image: busybox
    commands: ["echo a\necho b\n"]
    shell: bash
    working_dir: src
    env: {A: "1"}
    timeout: 90s
    continue_on_error: true
    matrix:
      go: ["1.25", "1.26"]
      include: [{go: "1.26", latest: "yes"}]
      exclude: [{go: "1.25"}]
    fail_fast: true
    max_parallel: 2
  test:
    image: busybox
    needs: [build]
    env: {B: "2"}
    if: failure()
    commands: [true]
  notify:
    image: busybox
    needs: [test]
    if: always()
    commands: [true]
`
	const theirs = `
steps:
  build:
    image: busybox
    run: |
      echo a
      echo b
    shell: bash
    working-directory: src
    env: {A: "1"}
    timeout-minutes: 1.5
    continue-on-error: true
    strategy:
      max-parallel: 2
      matrix:
        go: ["1.25", "1.26"]
        include: [{go: "1.26", latest: "yes"}]
        exclude: [{go: "1.25"}]
  test:
    image: busybox
    depends_on: [build]
    environment: {B: "2"}
    when: {status: [failure]}
    commands: [true]
  notify:
    image: busybox
    depends_on: build
    depends_on: test
    when:
      - status: success
      - status: [failure]
    commands: [true]
`
	want, err := Parse([]byte(ours))
	if err != nil {
		t.Fatalf("Parse(Dao's spelling): %v", err)
	}
	got, err := Parse([]byte(strings.Replace(theirs, "    depends_on: build\n", "", 1)))
	if err != nil {
		t.Fatalf("Parse(their spelling): %v", err)
	}
	// when: a list holds when one of its items does.
	want.Steps[2].If = "success() || failure()"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pipelines (-Dao's +theirs):\n%s", diff)
	}
	if got.Steps[0].Timeout != dao.Duration(90*time.Second) {
		t.Errorf("timeout-minutes: 1.5 = %s, want 1m30s", got.Steps[0].Timeout)
	}
	// The same key twice is refused by YAML, as before.
	if _, err := Parse([]byte(theirs)); err == nil || !strings.Contains(err.Error(), "steps.notify.depends_on: is given twice") {
		t.Errorf("depends_on twice: %v", err)
	}
}

func TestParseSpellingErrors(t *testing.T) {
	t.Parallel()
	const head = "steps:\n  test:\n    image: busybox\n" // lines 1-3
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"two spellings", "    commands: [a]\n    run: b\n",
			[]string{`line 5: steps.test.run: is "commands" again: give only one of "commands" and "run"`}},
		{"three spellings", "    timeout: 1m\n    timeout-minutes: 2\n    needs: []\n    depends_on: []\n",
			[]string{
				`line 5: steps.test.timeout-minutes: is "timeout" again: give only one of "timeout" and "timeout-minutes"`,
				`line 7: steps.test.depends_on: is "needs" again: give only one of "needs" and "depends_on"`,
			}},
		{"matrix and strategy", "    commands: [a]\n    matrix: {a: [x]}\n    strategy: {matrix: {b: [y]}}\n",
			[]string{`line 6: steps.test.strategy.matrix: is "matrix" again: give only one of "matrix" and "strategy.matrix"`}},
		{"when and if", "    commands: [a]\n    if: always()\n    when: {status: failure}\n",
			[]string{`line 6: steps.test.when: is "if" again: give only one of "if" and "when"`}},
		{"woodpecker conditions", "    commands: [a]\n    when: {branch: main, status: [done]}\n",
			[]string{
				`line 5: steps.test.when.branch: Dao has no "branch" condition; write the step's condition as "if", such as if: failure()`,
				`line 5: steps.test.when.status[0]: "done" is not a status: want success or failure`,
			}},
		{"minutes", "    commands: [a]\n    timeout-minutes: 10m\n",
			[]string{`line 5: steps.test.timeout-minutes: must be a number of minutes, such as 10 or 0.5`}},
		{"negative minutes", "    commands: [a]\n    timeout-minutes: -1\n",
			[]string{`line 5: steps.test.timeout-minutes: -1 is not a number of minutes from 0 to a few million`}},
		// What Validate says of a field given under an alias names the alias.
		{"validation of an alias", "    run: [a]\n    depends_on: [nope]\n    working-directory: \"a\\0b\"\n",
			[]string{
				`line 5: steps.test.depends_on[0]: unknown step "nope"`,
				`line 6: steps.test.working-directory: must not contain a NUL byte`,
			}},
		{"expression under an alias", "    run: ['${{ matrix.x }}']\n",
			[]string{`line 4, column 16: steps.test.run[0]: matrix key "x" is not in the step's matrix`}},
		{"actions", "    uses: actions/checkout@v4\n    with: {fetch-depth: 0}\n",
			[]string{
				`line 4: steps.test.uses: unknown field; Dao runs images, not actions: give an image and run (or commands)`,
				`line 5: steps.test.with: unknown field; Dao runs images, not actions: give the step's values in env`,
			}},
		{"jobs", "jobs:\n  build: {}\n", []string{`line 4: jobs: unknown field; a Dao pipeline is one job`}},
		{"shell", "    commands: [a]\n    shell: fish\n",
			[]string{`line 5: steps.test.shell: "fish" must be bash, sh, or a command line with {0} for the script`}},
		{"shell without commands", "    args: [a]\n    shell: bash\n",
			[]string{`line 5: steps.test.shell: a shell runs commands (run), and the step has none`}},
		{"matrix entries", "    commands: [a]\n    matrix:\n      go: [a]\n      include: [{}, {BAD-KEY: x}]\n      exclude: [{os: linux}]\n",
			[]string{
				`line 7: steps.test.matrix.include[0]: must give at least one key`,
				`line 7: steps.test.matrix.include[1].BAD-KEY: key "BAD-KEY" must be letters, digits and '_', not starting with a digit`,
				`line 8: steps.test.matrix.exclude[0].os: "os" is not a key of the matrix`,
			}},
		{"exclude all", "    commands: [a]\n    matrix: {go: [a], exclude: [{go: a}]}\n",
			[]string{`line 5: steps.test.matrix.exclude: excludes every combination: the step would not run`}},
		{"artifacts", "    commands: [a]\n    upload: {name: 'no/slash', paths: [../x]}\n    download: [a, a, '']\n",
			[]string{
				`line 5: steps.test.upload.name: "no/slash" must be letters, digits`,
				`line 5: steps.test.upload.paths[0]: "../x" is not a path inside the workspace`,
				`line 6: steps.test.download[1]: "a" is listed twice`,
				`line 6: steps.test.download[2]: must not be empty`,
			}},
		{"download of nothing", "    commands: [a]\n    upload: {name: app, paths: [x]}\n  next:\n    image: busybox\n    needs: [test]\n    commands: [a]\n    download: [apq, '${{ env.X }}']\n",
			[]string{`line 10: steps.next.download[0]: no step this one needs, directly or not, uploads "apq" (they upload app; did you mean "app"?)`}},
		{"one name for a matrix", "    commands: [a]\n    matrix: {v: [a, b]}\n    upload: {name: app, paths: [x]}\n",
			[]string{`line 6: steps.test.upload.name: every instance of the matrix would upload "app": give each its own name, such as "app-${{ matrix.<key> }}"`}},
		{"max parallel", "    commands: [a]\n    max_parallel: -1\n",
			[]string{`line 5: steps.test.max_parallel: must be >= 0, got -1`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(head + tc.yaml))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse error %T (%v), want *ParseError", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse error:\n%v\nwant a line containing\n  %s", err, w)
				}
			}
		})
	}
}

// TestParseErrorListsOneProblemALine: several problems come one a line, with their lines,
// and each is a Problem for errors.As; the *dao.ValidationError of before is still there.
func TestParseErrorListsOneProblemALine(t *testing.T) {
	t.Parallel()
	const src = `steps:
  build:
    image: busybox
    needs: [lint]
    timeout: 5 minutes
  test:
    image: busybox
    if: steps.build.outputs.ok = 'yes'
`
	file := filepath.Join(t.TempDir(), "ci.yaml")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(file)
	want := "invalid pipeline " + file + ": 3 problems:\n" +
		"  " + file + `:4: steps.build.needs[0]: unknown step "lint"` + "\n" +
		"  " + file + `:5: steps.build.timeout: "5 minutes" is not a duration such as 30s or 5m` + "\n" +
		"  " + file + `:8:32: steps.test.if: "=" is not an operator; compare with "=="`
	if err == nil || err.Error() != want {
		t.Fatalf("Load error:\n%v\nwant:\n%s", err, want)
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("errors.As(*ParseError) = false")
	}
	wantProblems := []Problem{
		{Field: "steps.build.needs[0]", Line: 4, Reason: `unknown step "lint"`},
		{Field: "steps.build.timeout", Line: 5, Reason: `"5 minutes" is not a duration such as 30s or 5m`},
		{Field: "steps.test.if", Line: 8, Column: 32, Reason: `"=" is not an operator; compare with "=="`},
	}
	if diff := cmp.Diff(wantProblems, pe.Problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	var p Problem
	if !errors.As(err, &p) || p != wantProblems[0] {
		t.Errorf("errors.As(Problem) = %v, want %v", p, wantProblems[0])
	}
	if !errors.Is(err, dao.ErrInvalid) || !errors.Is(p, dao.ErrInvalid) {
		t.Error("not dao.ErrInvalid")
	}
	var verr *dao.ValidationError
	if !errors.As(err, &verr) || len(verr.Errors) != 3 || verr.Errors[2].Reason != `"=" is not an operator; compare with "==" (line 8, column 32)` {
		t.Errorf("errors.As(*dao.ValidationError) = %v", verr)
	}
	// One problem is one line; without a file, the place is in words.
	_, err = Parse([]byte("steps:\n  a: {image: busybox, needs: [x]}\n"))
	if want := `invalid pipeline: line 2: steps.a.needs[0]: unknown step "x"`; err == nil || err.Error() != want {
		t.Errorf("Parse error %q, want %q", err, want)
	}
}

func TestShellCommand(t *testing.T) {
	t.Parallel()
	for shell, want := range map[string][]string{
		"bash":            {"bash", "--noprofile", "--norc", "-eo", "pipefail", "/dao/script"},
		"sh":              {"sh", "-e", "/dao/script"},
		"python3 -u {0}":  {"python3", "-u", "/dao/script"},
		"sh -c '. {0}'":   {"sh", "-c", "'.", "/dao/script'"},
		"busybox ash {0}": {"busybox", "ash", "/dao/script"},
	} {
		got := shellCommand(shell, "/dao/script")
		if diff := cmp.Diff(append([]string{"/bin/sh", "-c", `exec 2>&1; exec "$@"`, "sh"}, want...), got); diff != "" {
			t.Errorf("shellCommand(%q) (-want +got):\n%s", shell, diff)
		}
	}
}

// TestSecretsMaskedInJSON: a secret is masked as toJSON writes it too.
func TestSecretsMaskedInJSON(t *testing.T) {
	t.Parallel()
	secrets := map[string]string{"TOKEN": `p"a\ss<w>`, "KEY": "line1\nline2"}
	set := runSecretSet(secrets)
	sc := &fakeScope{secrets: secrets}
	tm, err := parseTemplate("${{ toJSON(secrets) }} ${{ secrets.TOKEN }} ${{ format('{0}', secrets.KEY) }}")
	if err != nil {
		t.Fatal(err)
	}
	out, err := tm.render(sc)
	if err != nil {
		t.Fatal(err)
	}
	masked := set.mask(out)
	for _, v := range []string{"p\"a", `p\"a`, "line1", "line2", "<w>"} {
		if strings.Contains(masked, v) {
			t.Errorf("masked text %q shows %q", masked, v)
		}
	}
	want := "{\n  \"KEY\": \"***\",\n  \"TOKEN\": \"***\"\n} *** ***"
	if masked != want {
		t.Errorf("masked = %q, want %q", masked, want)
	}
}

func TestGlobMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"go.sum", "go.sum", true},
		{"**/go.sum", "go.sum", true},
		{"**/go.sum", "a/b/go.sum", true},
		{"a/**", "a/b/c", true},
		{"a/**/c", "a/c", true},
		{"a/**/c", "a/x/y/c", true},
		{"*.go", "a/b.go", false},
		{"**/*.go", "a/b.go", true},
		{"a/*/c", "a/b/c", true},
		{"a/*/c", "a/b/x/c", false},
	} {
		if got := globMatch(tc.pattern, tc.name); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %t, want %t", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestHashFiles(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	for name, content := range map[string]string{"go.sum": "a", "sub/go.sum": "b", "vendor/go.sum": "c", "x.txt": "d"} {
		if err := os.MkdirAll(filepath.Join(ws, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ws, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	all, err := hashFiles(ws, []string{"**/go.sum"})
	if err != nil || len(all) != 64 {
		t.Fatalf("hashFiles = %q, %v", all, err)
	}
	some, err := hashFiles(ws, []string{"**/go.sum", "!vendor/**"})
	if err != nil || some == all || len(some) != 64 {
		t.Errorf("hashFiles without vendor = %q, %v; want another hash than %q", some, err, all)
	}
	if again, _ := hashFiles(ws, []string{"!vendor/**", "**/go.sum"}); again != some {
		t.Errorf("the order of patterns changed the hash: %q, %q", again, some)
	}
	if none, err := hashFiles(ws, []string{"*.lock"}); none != "" || err != nil {
		t.Errorf("hashFiles of nothing = %q, %v; want \"\"", none, err)
	}
	if _, err := hashFiles(ws, []string{"../etc/passwd"}); err == nil {
		t.Error("hashFiles outside the workspace = nil error")
	}
}
