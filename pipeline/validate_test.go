package pipeline

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao"
)

// validPipeline is a pipeline of every kind of step that Validate accepts.
func validPipeline() *Pipeline {
	return &Pipeline{
		Name: "app",
		Env:  map[string]string{"GOFLAGS": "-mod=mod"},
		Steps: []Step{
			{Name: "version", Image: "busybox", Commands: []string{`echo "tag=1.2" >> "$DAO_OUTPUT"`}},
			{
				Name: "test", Image: "golang:1.26", Needs: []string{"version"},
				Commands: []string{"go test ./..."},
				Matrix:   map[string][]string{"shard": {"1", "2"}},
				Env:      map[string]string{"SHARD": "${{ matrix.shard }}"},
				Cache:    &Cache{KeyFiles: []string{"go.sum"}, Paths: []string{".cache", "/workspace/bin"}},
				Services: []Service{{Name: "db", Image: "postgres:16", Ports: []int{5432}, Secrets: []string{"DB_PASSWORD"}}},
				Secrets:  []string{"TOKEN"},
				Timeout:  dao.Duration(60e9),
				Retries:  2,
			},
			{
				Name: "image", Needs: []string{"test"},
				Build: &Build{
					Ref:        "registry.example.com/app:${{ steps.version.outputs.tag }}",
					Add:        []BuildFile{{Src: "bin/app", Dst: "/app"}},
					Entrypoint: []string{"/app"},
				},
			},
			{
				Name: "deploy", Needs: []string{"image"},
				If:     "success() && steps.version.outputs.tag != ''",
				Deploy: &Deploy{Service: "web", Image: "${{ steps.image.outputs.image }}"},
			},
			{Name: "notify", Needs: []string{"deploy"}, If: "failure()", Image: "busybox", Args: []string{"echo", "failed"}},
		},
	}
}

func TestValidPipeline(t *testing.T) {
	t.Parallel()
	if err := validPipeline().Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	type problem struct{ field, reason string }
	for _, tc := range []struct {
		name   string
		change func(p *Pipeline)
		want   []problem
	}{
		{"no steps", func(p *Pipeline) { p.Steps = nil }, []problem{{"steps", "at least one step"}}},
		{"cycle", func(p *Pipeline) { p.Steps[0].Needs = []string{"deploy"} },
			[]problem{{"steps.version.needs", "cycle: version -> deploy -> image -> test -> version"}}},
		{"two-step cycle", func(p *Pipeline) {
			p.Steps = []Step{
				{Name: "a", Image: "busybox", Needs: []string{"b"}},
				{Name: "b", Image: "busybox", Needs: []string{"a"}},
			}
		}, []problem{{"steps.a.needs", "cycle: a -> b -> a"}}},
		{"unknown need", func(p *Pipeline) { p.Steps[1].Needs = []string{"version", "lint"} },
			[]problem{{"steps.test.needs[1]", `unknown step "lint"`}}},
		{"needs itself", func(p *Pipeline) { p.Steps[0].Needs = []string{"version"} },
			[]problem{{"steps.version.needs[0]", "cannot need itself"}}},
		{"need twice", func(p *Pipeline) { p.Steps[1].Needs = []string{"version", "version"} },
			[]problem{{"steps.test.needs[1]", `"version" is listed twice`}}},
		{"duplicate name", func(p *Pipeline) { p.Steps[4].Name = "test" },
			[]problem{{"steps[4].name", `"test" is also the name of steps[1]`}}},
		{"bad name", func(p *Pipeline) { p.Steps[0].Name = "my step"; p.Steps[1].Needs = nil },
			[]problem{
				{"steps.my step.name", "letters and digits"},
				{"steps.image.build.ref", `column 30: unknown step "version"`},
				{"steps.deploy.if", `column 14: unknown step "version"`},
			}},
		{"no name", func(p *Pipeline) { p.Steps[4].Name = "" }, []problem{{"steps[4].name", "must not be empty"}}},
		{"no kind", func(p *Pipeline) { p.Steps[0].Image = ""; p.Steps[0].Commands = nil },
			[]problem{{"steps.version", "must have an image (a container step), a build or a deploy"}}},
		{"two kinds", func(p *Pipeline) { p.Steps[2].Image = "busybox" },
			[]problem{{"steps.image", "only one of image, build and deploy"}}},
		{"commands on a build", func(p *Pipeline) { p.Steps[2].Commands = []string{"make"} },
			[]problem{{"steps.image.commands", "only container steps"}}},
		{"commands and args", func(p *Pipeline) { p.Steps[0].Args = []string{"x"} },
			[]problem{{"steps.version.args", "commands and args do not go together"}}},
		{"bad image", func(p *Pipeline) { p.Steps[0].Image = "Busy Box" },
			[]problem{{"steps.version.image", "not an image reference"}}},
		{"bad condition", func(p *Pipeline) { p.Steps[3].If = "success() && steps.version.outputs.tag = ''" },
			[]problem{{"steps.deploy.if", `column 40: "=" is not an operator`}}},
		{"condition on a step not needed", func(p *Pipeline) { p.Steps[1].If = "steps.notify.status == 'success'" },
			[]problem{{"steps.test.if", `column 1: step "notify" is not among the steps this one needs`}}},
		{"expression on a step not needed", func(p *Pipeline) {
			p.Steps[0].Commands = []string{"echo ${{ steps.test.outputs.x }}"}
		}, []problem{{"steps.version.commands[0]", `column 10: step "test" is not among the steps this one needs`}}},
		{"bad expression in env", func(p *Pipeline) { p.Steps[1].Env["X"] = "${{ matrix.shard" },
			[]problem{{"steps.test.env.X", `column 17: unexpected end of expression, want "}}"`}}},
		{"matrix key not in matrix", func(p *Pipeline) { p.Steps[1].Env["X"] = "${{ matrix.os }}" },
			[]problem{{"steps.test.env.X", `column 5: matrix key "os" is not in the step's matrix`}}},
		{"timeout and retries", func(p *Pipeline) { p.Steps[1].Timeout = -1; p.Steps[1].Retries = 11 },
			[]problem{{"steps.test.timeout", "must be >= 0"}, {"steps.test.retries", "must be 0-10, got 11"}}},
		{"empty matrix", func(p *Pipeline) { p.Steps[1].Matrix["os"] = nil },
			[]problem{{"steps.test.matrix.os", "at least one value"}}},
		{"matrix too large", func(p *Pipeline) {
			vals := make([]string, 20)
			for i := range vals {
				vals[i] = strings.Repeat("x", i+1)
			}
			p.Steps[1].Matrix = map[string][]string{"a": vals, "b": vals, "shard": {"1"}}
		}, []problem{{"steps.test.matrix", "more than 256 instances"}}},
		{"matrix keys that clash", func(p *Pipeline) { p.Steps[1].Matrix["SHARD"] = []string{"x"} },
			[]problem{{"steps.test.matrix.shard", `"SHARD" and "shard" give the same variable MATRIX_SHARD`}}},
		{"bad env", func(p *Pipeline) { p.Env["1X"] = "y" }, []problem{{"env.1X", "not a variable name"}}},
		{"bad secret", func(p *Pipeline) { p.Steps[1].Secrets = []string{"TOKEN", "bad-name", "TOKEN"} },
			[]problem{{"steps.test.secrets[1]", "not a variable name"}, {"steps.test.secrets[2]", "listed twice"}}},
		{"cache outside the workspace", func(p *Pipeline) {
			p.Steps[1].Cache = &Cache{KeyFiles: []string{"../go.sum"}, Paths: []string{"/root/.cache", "."}}
		}, []problem{
			{"steps.test.cache.key_files[0]", "not a path inside the workspace"},
			{"steps.test.cache.paths[0]", "outside /workspace"},
			{"steps.test.cache.paths[1]", "not a path inside the workspace"},
		}},
		{"cache without paths", func(p *Pipeline) { p.Steps[1].Cache.Paths = nil },
			[]problem{{"steps.test.cache.paths", "at least one path"}}},
		{"bad service", func(p *Pipeline) {
			p.Steps[1].Services = []Service{{Name: "DB", Ports: []int{0}}, {Name: "cache", Image: "redis", ReadyTimeout: -1}, {Name: "cache", Image: "redis"}}
		}, []problem{
			{"steps.test.services.DB.name", "lowercase letters and digits"},
			{"steps.test.services.DB.image", "must not be empty"},
			{"steps.test.services.DB.ports[0]", "must be 1-65535, got 0"},
			{"steps.test.services.cache.ready_timeout", "must be >= 0"},
			{"steps.test.services[2].name", `"cache" is also the name of services[1]`},
		}},
		{"bad build", func(p *Pipeline) {
			p.Steps[2].Build = &Build{Add: []BuildFile{{Src: "../x", Dst: "rel"}}, Env: []string{"NOEQ"}, ExposedPorts: []string{"80/tcp", "http", "70000"}}
		}, []problem{
			{"steps.image.build.ref", "must not be empty"},
			{"steps.image.build.add[0].src", "not a path inside the workspace"},
			{"steps.image.build.add[0].dst", "must be an absolute path in the image"},
			{"steps.image.build.env[0]", "KEY=VALUE"},
			{"steps.image.build.exposed_ports[1]", "must be a port"},
			{"steps.image.build.exposed_ports[2]", "port 70000 must be 1-65535"},
		}},
		{"bad deploy", func(p *Pipeline) { p.Steps[3].Deploy = &Deploy{} },
			[]problem{{"steps.deploy.deploy.service", "must not be empty"}, {"steps.deploy.deploy.image", "must not be empty"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := validPipeline()
			tc.change(p)
			err := p.Validate()
			var verr *dao.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Validate() = %v, want a *dao.ValidationError", err)
			}
			if !errors.Is(err, dao.ErrInvalid) {
				t.Errorf("errors.Is(err, dao.ErrInvalid) = false")
			}
			var got, want []string
			for _, fe := range verr.Errors {
				got = append(got, fe.Field)
			}
			for _, w := range tc.want {
				want = append(want, w.field)
			}
			slices.Sort(got)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("fields of %q (-want +got):\n%s", err, diff)
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(verr.Errors, func(fe dao.FieldError) bool {
					return fe.Field == w.field && strings.Contains(fe.Reason, w.reason)
				}) {
					t.Errorf("got %q, want %s: ...%s...", err, w.field, w.reason)
				}
			}
		})
	}
}

func TestExpandMatrix(t *testing.T) {
	t.Parallel()
	labels := func(s *Step) []string {
		var out []string
		for _, in := range s.expand() {
			out = append(out, in.label)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		step Step
		want []string
	}{
		{"product", Step{Matrix: map[string][]string{"os": {"linux", "darwin"}, "go": {"1.25", "1.26"}}},
			[]string{"go=1.25, os=linux", "go=1.25, os=darwin", "go=1.26, os=linux", "go=1.26, os=darwin"}},
		{"exclude a partial match", Step{
			Matrix:        map[string][]string{"os": {"linux", "darwin"}, "go": {"1.25", "1.26"}},
			MatrixExclude: []map[string]string{{"os": "darwin", "go": "1.25"}, {"go": "1.26", "os": "linux"}},
		}, []string{"go=1.25, os=linux", "go=1.26, os=darwin"}},
		{"exclude by one key", Step{
			Matrix:        map[string][]string{"os": {"linux", "darwin"}, "go": {"1.25", "1.26"}},
			MatrixExclude: []map[string]string{{"os": "darwin"}},
		}, []string{"go=1.25, os=linux", "go=1.26, os=linux"}},
		// GitHub's documented example: the include that adds color to every combination, the
		// one that fits only some, and the one that fits none and is an instance of its own.
		{"include", Step{
			Matrix: map[string][]string{"fruit": {"apple", "pear"}, "animal": {"cat", "dog"}},
			MatrixInclude: []map[string]string{
				{"color": "green"},
				{"color": "pink", "animal": "cat"},
				{"fruit": "apple", "shape": "circle"},
				{"fruit": "banana"},
				{"fruit": "banana", "animal": "cat"},
			},
		}, []string{
			"animal=cat, color=pink, fruit=apple, shape=circle",
			"animal=cat, color=pink, fruit=pear",
			"animal=dog, color=green, fruit=apple, shape=circle",
			"animal=dog, color=green, fruit=pear",
			"fruit=banana",
			"animal=cat, fruit=banana",
		}},
		{"include only", Step{MatrixInclude: []map[string]string{{"os": "linux"}, {"os": "mac", "arm": "yes"}}},
			[]string{"os=linux", "arm=yes, os=mac"}},
	} {
		if diff := cmp.Diff(tc.want, labels(&tc.step)); diff != "" {
			t.Errorf("%s: instances (-want +got):\n%s", tc.name, diff)
		}
	}
	if got := (&Step{}).expand(); len(got) != 1 || got[0].values != nil {
		t.Errorf("expand of no matrix = %v, want one instance without values", got)
	}
}
