package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao"
)

const fullYAML = `
name: app
env:
  GOFLAGS: -mod=mod
  N: 3
steps:
  version:
    image: busybox
    commands:
      - echo "tag=1.2" >> "$DAO_OUTPUT"
  test:
    image: golang:1.26
    needs: version
    commands: go test ./...
    matrix:
      shard: [1, 2]
    env:
      SHARD: ${{ matrix.shard }}
    secrets: [TOKEN]
    working_dir: src
    user: "1000"
    timeout: 1m
    retries: 2
    continue_on_error: true
    cache:
      key_files: [go.sum]
      paths: [.cache, /workspace/bin]
      skip_on_hit: true
    services:
      db:
        image: postgres:16
        env: {POSTGRES_DB: test}
        secrets: [DB_PASSWORD]
        ports: [5432]
        ready_timeout: 10s
  image:
    needs: [test]
    build:
      ref: registry.example.com/app:${{ steps.version.outputs.tag }}
      add:
        - {src: bin/app, dst: /app}
      entrypoint: [/app]
      env: {MODE: prod}
      exposed_ports: [8080]
  deploy:
    needs: [image]
    if: ${{ success() && steps.version.outputs.tag != '' }}
    deploy:
      service: web
      image: ${{ steps.image.outputs.image }}
`

func TestParseFull(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte(fullYAML))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &Pipeline{
		Name: "app",
		Env:  map[string]string{"GOFLAGS": "-mod=mod", "N": "3"},
		Steps: []Step{
			{Name: "version", Image: "busybox", Commands: []string{`echo "tag=1.2" >> "$DAO_OUTPUT"`}},
			{
				Name: "test", Image: "golang:1.26", Needs: []string{"version"},
				Commands:        []string{"go test ./..."},
				Matrix:          map[string][]string{"shard": {"1", "2"}},
				Env:             map[string]string{"SHARD": "${{ matrix.shard }}"},
				Secrets:         []string{"TOKEN"},
				WorkingDir:      "src",
				User:            "1000",
				Timeout:         dao.Duration(60e9),
				Retries:         2,
				ContinueOnError: true,
				Cache:           &Cache{KeyFiles: []string{"go.sum"}, Paths: []string{".cache", "/workspace/bin"}, SkipOnHit: true},
				Services: []Service{{
					Name: "db", Image: "postgres:16", Env: map[string]string{"POSTGRES_DB": "test"},
					Secrets: []string{"DB_PASSWORD"}, Ports: []int{5432}, ReadyTimeout: dao.Duration(10e9),
				}},
			},
			{
				Name: "image", Needs: []string{"test"},
				Build: &Build{
					Ref:          "registry.example.com/app:${{ steps.version.outputs.tag }}",
					Add:          []BuildFile{{Src: "bin/app", Dst: "/app"}},
					Entrypoint:   []string{"/app"},
					Env:          []string{"MODE=prod"},
					ExposedPorts: []string{"8080"},
				},
			},
			{
				Name: "deploy", Needs: []string{"image"},
				If:     "${{ success() && steps.version.outputs.tag != '' }}",
				Deploy: &Deploy{Service: "web", Image: "${{ steps.image.outputs.image }}"},
			},
		},
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

func TestParseListForms(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte(`
steps:
  - name: a
    image: busybox
    services:
      - name: db
        image: postgres
  - name: b
    image: busybox
    needs: [a]
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(p.Steps) != 2 || p.Steps[0].Name != "a" || p.Steps[1].Name != "b" || p.Steps[0].Services[0].Name != "db" {
		t.Errorf("Parse = %+v", p)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		yaml string
		want []string // each a "field: reason" part of the message
	}{
		{"empty", ``, []string{"steps: must list at least one step"}},
		{"syntax", "steps:\n  a: [\n", []string{"yaml: did not find expected node content at the end of the file (line 3, column 1)"}},
		{"unknown field", `
steps:
  test:
    image: busybox
    uses: actions/checkout@v4
`, []string{`steps.test.uses: unknown field; Dao runs images, not actions: give an image and run (or commands) (line 5)`}},
		{"typo", `
steps:
  test:
    imag: busybox
`, []string{`steps.test.imag: unknown field; did you mean "image"? (line 4)`}},
		{"kebab-case", `
steps:
  test:
    image: busybox
    commands: [true]
    cache: {paths: [x], skip-on-hit: true}
`, []string{`steps.test.cache.skip-on-hit: unknown field; did you mean "skip_on_hit"? (line 6)`}},
		{"bad types", `
steps:
  test:
    image: [busybox]
    retries: two
    timeout: 5x
    continue_on_error: maybe
    needs: {a: b}
`, []string{
			"steps.test.image: must be a string (line 4)",
			"steps.test.retries: must be a whole number (line 5)",
			`steps.test.timeout: "5x" is not a duration such as 30s or 5m (line 6)`,
			"steps.test.continue_on_error: must be true or false (line 7)",
			"steps.test.needs: must be a list of strings (line 8)",
		}},
		{"duplicate key", `
steps:
  a:
    image: busybox
    image: alpine
`, []string{"steps.a.image: is given twice (line 5)"}},
		{"validation with lines", `
steps:
  build:
    image: busybox
    needs: [lint]
  test:
    image: busybox
    needs: [build]
    if: steps.build.outputs.ok = 'yes'
`, []string{
			`steps.build.needs[0]: unknown step "lint" (line 5)`,
			`steps.test.if: "=" is not an operator; compare with "==" (line 9, column 32)`,
		}},
		{"cycle with line", `
steps:
  a:
    image: busybox
    needs: [b]
  b:
    image: busybox
    needs: [a]
`, []string{"steps.a.needs: cycle: a -> b -> a (line 5)"}},
		{"list step without a name", `
steps:
  - image: busybox
`, []string{"steps[0].name: must not be empty (line 3)"}},
		{"name in a mapping", `
steps:
  a:
    name: b
    image: busybox
`, []string{"steps.a.name: a step's name is its key in steps (line 4)"}},
		{"steps not a mapping", `steps: 3`, []string{"steps: must be a mapping (line 1)"}},
		{"merge key", `
base: &base
  image: busybox
steps:
  a:
    <<: *base
`, []string{"base: unknown field (line 2)", "steps.a.<<: merge keys are not supported (line 6)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse = nil error, want %q", tc.want)
			}
			var verr *dao.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Parse error %T (%v), want *dao.ValidationError", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(verr.Error(), w) {
					t.Errorf("Parse error:\n  %v\nwant it to contain\n  %s", err, w)
				}
			}
		})
	}
}

func TestParseAliases(t *testing.T) {
	t.Parallel()
	// Aliases are followed; a document of aliases nested many times over is refused rather
	// than expanded.
	p, err := Parse([]byte(`
steps:
  a:
    image: &img busybox
    commands: &cmds [true]
  b:
    image: *img
    commands: *cmds
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if p.Steps[1].Image != "busybox" || p.Steps[1].Commands[0] != "true" {
		t.Errorf("aliases not followed: %+v", p.Steps[1])
	}
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	b.WriteString("steps:\n  s:\n    image: busybox\n    commands: *a8\n")
	if _, err := Parse([]byte(b.String())); err == nil {
		t.Error("Parse of nested aliases = nil error, want one")
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(path, []byte(fullYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(path)
	if err != nil || len(p.Steps) != 4 {
		t.Fatalf("Load = %v, %v", p, err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want os.ErrNotExist", err)
	}
}

// fieldErrors returns the problems of a Parse error.
func fieldErrors(t *testing.T, err error) []dao.FieldError {
	t.Helper()
	var verr *dao.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Parse error %T (%v), want *dao.ValidationError", err, err)
	}
	return verr.Errors
}

// TestParseSyntaxErrorsAtTheirPlace: a YAML syntax error is reported at the line and column
// where the parser found it (yaml.v3 said where the enclosing mapping began, counted from 0),
// and an unclosed string where it starts.
func TestParseSyntaxErrorsAtTheirPlace(t *testing.T) {
	t.Parallel()
	const head = "steps:\n  a:\n    image: busybox\n" // lines 1-3
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"bad indentation", head + "    commands:\n   - echo\n",
			"did not find expected key while parsing a block mapping from line 2, column 3 (line 5, column 4)"},
		{"key less indented", head + "    user: root\n   env: {}\n",
			"did not find expected key while parsing a block mapping from line 2, column 3 (line 5, column 4)"},
		{"list item in a mapping", head + "    - echo\n",
			"did not find expected key while parsing a block mapping from line 3, column 5 (line 4, column 5)"},
		{"unclosed double quote", head + "    user: root\n    if: \"always()\n    retries: 1\n",
			"found unexpected end of stream, and the file ends before a quoted scalar is closed (line 5, column 9)"},
		{"unclosed single quote", head + "    user: 'root\n",
			"found unexpected end of stream, and the file ends before a quoted scalar is closed (line 4, column 11)"},
		{"unclosed flow sequence", head + "    commands: [a, b\n    user: root\n",
			"did not find expected ',' or ']' while parsing a flow sequence from line 4, column 15 (line 5, column 9)"},
		{"unclosed flow mapping at the end", head + "    env: {A: b\n",
			"the file ends before a flow mapping is closed (line 4, column 10)"},
		{"tab", head + "\tuser: root\n", "found a tab character that violates indentation"},
		{"character that starts no token", head + "    user: @me\n",
			"found character that cannot start any token (line 4, column 11)"},
		{"mapping in a plain scalar", head + "    user: a: b\n",
			"mapping values are not allowed in this context (line 4, column 12)"},
		{"bad escape", head + "    user: \"\\q\"\n", "found unknown escape character"},
		{"unknown alias", head + "    user: *who\n", "unknown anchor 'who' referenced (line 4, column 11)"},
		{"columns count characters", head + "    env: {É€: \"\\q\"}\n", "(line 4, column 16)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse = nil error, want %q", tc.want)
			}
			got := fieldErrors(t, err)
			if len(got) != 1 || got[0].Field != "yaml" || !strings.Contains(got[0].Reason, tc.want) {
				t.Errorf("Parse error:\n  %v\nwant one problem of the field yaml containing\n  %s", err, tc.want)
			}
		})
	}
}

// TestParseReportsEveryProblem: the problems of decoding the YAML and those Validate finds
// come at once, in the order of their lines; a field that could not be decoded is not also
// blamed for the value it lacks.
func TestParseReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte(`
steps:
  build:
    image: busybox
    requirements: [x]
    needs: [lint]
  test:
    image: [busybox]
    retries: 11
  deploy:
    imag: busybox
    needs:
      - build
      - nope
    timeout: 5x
    cache: {paths: {a: b}}
`))
	want := []dao.FieldError{
		{Field: "steps.build.requirements", Reason: "unknown field (line 5)"},
		{Field: "steps.build.needs[0]", Reason: `unknown step "lint" (line 6)`},
		{Field: "steps.test.image", Reason: "must be a string (line 8)"},
		{Field: "steps.test.retries", Reason: "must be 0-10, got 11 (line 9)"},
		{Field: "steps.deploy", Reason: "must have an image (a container step), a build or a deploy (line 10)"},
		{Field: "steps.deploy.imag", Reason: `unknown field; did you mean "image"? (line 11)`},
		{Field: "steps.deploy.needs[1]", Reason: `unknown step "nope" (line 14)`},
		{Field: "steps.deploy.timeout", Reason: `"5x" is not a duration such as 30s or 5m (line 15)`},
		{Field: "steps.deploy.cache.paths", Reason: "must be a list of strings (line 16)"},
	}
	if diff := cmp.Diff(want, fieldErrors(t, err)); diff != "" {
		t.Errorf("Parse problems (-want +got):\n%s", diff)
	}
	// errors.Is and errors.As see every problem, through any wrapping.
	wrapped := fmt.Errorf("load: %w", err)
	for _, fe := range want {
		if !errors.Is(wrapped, fe) {
			t.Errorf("errors.Is(err, %v) = false", fe)
		}
	}
	var first dao.FieldError
	if !errors.As(wrapped, &first) || first != want[0] {
		t.Errorf("errors.As(err, *dao.FieldError) = %v, want %v", first, want[0])
	}
	if !errdefs.IsInvalidArgument(wrapped) || !errors.Is(wrapped, dao.ErrInvalid) {
		t.Errorf("%v: not dao.ErrInvalid", wrapped)
	}
}

// TestParseLines: problems are at the line of what they are about: an item of a list, a
// step of a list with the name of an earlier one, an expression's column in the file.
func TestParseLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{"list item", `
steps:
  a:
    image: busybox
  b:
    image: busybox
    needs:
      - a
      - lint
`, []string{`steps.b.needs[1]: unknown step "lint" (line 9)`}},
		{"steps of a list with the same name", `
steps:
  - name: a
    image: busybox
  - name: a
    image: Bad
`, []string{
			`steps[1].name: "a" is also the name of steps[0] (line 5)`,
			`steps[1].image: "Bad" is not an image reference`, "(line 6)",
		}},
		{"services of a list", `
steps:
  - name: a
    image: busybox
    services:
      - name: db
        image: postgres
      - name: cache
        image: redis
        ports: [0]
`, []string{"steps.a.services.cache.ports[0]: must be 1-65535, got 0 (line 10)"}},
		{"expression in quotes", `
steps:
  a:
    image: busybox
    if: "steps.a.outputs.x = 'y'"
`, []string{`steps.a.if: "=" is not an operator; compare with "==" (line 5, column 28)`}},
		{"expression in a list item", `
steps:
  a:
    image: busybox
    commands:
      - echo ${{ matrix.os }}
`, []string{`steps.a.commands[0]: matrix key "os" is not in the step's matrix (line 6, column 18)`}},
		{"expression in a block scalar keeps its own column", `
steps:
  a:
    image: busybox
    if: >-
      steps.a.outputs.x = 'y'
`, []string{`steps.a.if: column 19: "=" is not an operator; compare with "==" (line 5)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse = nil error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(validationText(err), w) {
					t.Errorf("Parse error:\n  %v\nwant it to contain\n  %s", err, w)
				}
			}
		})
	}
}

// TestParseOneDocument: a second YAML document is refused, not ignored.
func TestParseOneDocument(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		"steps:\n  a: {image: busybox}\n---\nsteps:\n  b: {image: busybox}\n",
		"steps:\n  a: {image: busybox}\n---\n",
	} {
		_, err := Parse([]byte(doc))
		if err == nil || !strings.Contains(validationText(err), "yaml: a second YAML document starts here; a pipeline is one document (line 3)") {
			t.Errorf("Parse(%q) = %v, want a second document refused at line 3", doc, err)
		}
	}
	if _, err := Parse([]byte("steps:\n  a: {image: busybox}\n...\n")); err != nil {
		t.Errorf("Parse of a document ended by ...: %v", err)
	}
}

// TestParseTooManyNodes: a document past the node limit is one problem, not one per node.
func TestParseTooManyNodes(t *testing.T) {
	t.Parallel()
	doc := "steps:\n  a:\n    image: busybox\n    commands: [" + strings.Repeat("x, ", maxYAMLNodes) + "x]\n"
	_, err := Parse([]byte(doc))
	if err == nil {
		t.Fatal("Parse = nil error")
	}
	got := fieldErrors(t, err)
	if len(got) != 1 || !strings.Contains(got[0].Reason, "nodes") {
		t.Errorf("Parse: %d problems, the first %v; want one about the number of nodes", len(got), got[0])
	}
}

// validationText is the text of the *dao.ValidationError in err: its problems on one line,
// each with its line at the end.
func validationText(err error) string {
	var v *dao.ValidationError
	if errors.As(err, &v) {
		return v.Error()
	}
	if err != nil {
		return err.Error()
	}
	return ""
}
