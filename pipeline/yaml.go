package pipeline

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/opendao/dao"
)

// The YAML format reads like a Woodpecker or GitHub Actions file: a mapping of step names to
// steps, in the order they are listed.
//
//	name: app
//	env:
//	  CGO_ENABLED: "0"
//	steps:
//	  version:
//	    image: busybox
//	    commands:
//	      - echo "tag=1.$(date +%s)" >> "$DAO_OUTPUT"
//	  test:
//	    image: golang:1.26
//	    needs: [version]
//	    commands: [go test ./...]
//	    matrix:
//	      shard: ["1", "2"]
//	  image:
//	    needs: [test]
//	    build:
//	      ref: registry.example.com/app:${{ steps.version.outputs.tag }}
//	      add: [{src: bin/app, dst: /app}]
//	      entrypoint: [/app]
//
// Step fields use the JSON names of Step (snake_case); "steps" may also be a list of steps
// that carry their "name", and "services" a list of services likewise. "needs",
// "commands", "key_files" and similar lists also take a single string.

// maxYAMLSize and maxYAMLNodes bound what Parse reads, aliases included.
const (
	maxYAMLSize  = 4 << 20
	maxYAMLNodes = 200_000
)

// Load reads the YAML file at path with Parse.
func Load(path string) (*Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	return Parse(data)
}

// Parse reads a pipeline from YAML and validates it. Errors are a *dao.ValidationError that
// names each problem's field and line, such as
// `steps.test.timeout: "5x" is not a duration such as 30s or 5m (line 7)`; unknown fields are
// refused.
func Parse(data []byte) (*Pipeline, error) {
	if len(data) > maxYAMLSize {
		return nil, &dao.ValidationError{What: "pipeline", Errors: []dao.FieldError{{Field: "yaml", Reason: fmt.Sprintf("larger than %d bytes", maxYAMLSize)}}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		return nil, &dao.ValidationError{What: "pipeline", Errors: []dao.FieldError{{Field: "yaml", Reason: msg}}}
	}
	d := &decoder{lines: map[string]int{}}
	p := &Pipeline{}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if root.Kind == 0 || root.Kind == yaml.DocumentNode || isNull(root) {
		d.pr.add("steps", "must list at least one step")
	} else {
		d.pipeline(root, p)
	}
	if len(d.pr.list) > 0 {
		return nil, d.pr.err()
	}
	var pr problems
	p.validate(&pr)
	for i := range pr.list {
		if line := d.lineOf(pr.list[i].Field); line > 0 {
			pr.list[i].Reason += fmt.Sprintf(" (line %d)", line)
		}
	}
	if err := pr.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// decoder walks the YAML tree, recording problems and where each field was.
type decoder struct {
	pr    problems
	lines map[string]int
	nodes int
}

func (d *decoder) fail(field string, n *yaml.Node, format string, args ...any) {
	reason := fmt.Sprintf(format, args...)
	if n != nil && n.Line > 0 {
		reason += fmt.Sprintf(" (line %d)", n.Line)
	}
	d.pr.list = append(d.pr.list, dao.FieldError{Field: field, Reason: reason})
}

// lineOf returns the line of field, or of the nearest enclosing field that has one.
func (d *decoder) lineOf(field string) int {
	for f := field; f != ""; {
		if l, ok := d.lines[f]; ok {
			return l
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return 0
}

// deref follows aliases and counts nodes, so that a document of nested aliases cannot make
// the decoder walk forever.
func (d *decoder) deref(n *yaml.Node) (*yaml.Node, bool) {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	d.nodes++
	if n == nil || n.Kind == yaml.AliasNode || d.nodes > maxYAMLNodes {
		return nil, false
	}
	return n, true
}

// alias records the lines of the fields under from also under to: a step of a list is
// "steps[2]" while it is decoded and "steps.build" once its name is known.
func (d *decoder) alias(from, to string) {
	if from == to {
		return
	}
	for f, l := range d.lines {
		if rest, ok := strings.CutPrefix(f, from); ok && (rest == "" || rest[0] == '.' || rest[0] == '[') {
			d.lines[to+rest] = l
		}
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// fields walks a mapping node, calling f for each key with its value; it refuses a node that
// is not a mapping, duplicate keys and keys f does not know (f returns false), suggesting the
// nearest known one.
func (d *decoder) fields(at string, n *yaml.Node, known []string, f func(key, field string, v *yaml.Node) bool) {
	n, ok := d.deref(n)
	if !ok {
		d.fail(at, nil, "document too large or aliases nested too deep")
		return
	}
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(at, n, "must be a mapping")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(at, k, "keys must be strings")
			continue
		}
		field := join(at, k.Value)
		if seen[k.Value] {
			d.fail(field, k, "is given twice")
			continue
		}
		seen[k.Value] = true
		d.lines[field] = k.Line
		if k.Value == "<<" {
			d.fail(field, k, "merge keys are not supported")
			continue
		}
		if !f(k.Value, field, v) {
			msg := "unknown field"
			if s := suggest(k.Value, known); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			d.fail(field, k, "%s", msg)
		}
	}
}

func join(at, key string) string {
	if at == "" {
		return key
	}
	return at + "." + key
}

// str reads a scalar as a string; null is "".
func (d *decoder) str(field string, n *yaml.Node) string {
	n, ok := d.deref(n)
	if !ok {
		d.fail(field, nil, "document too large or aliases nested too deep")
		return ""
	}
	if isNull(n) {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		d.fail(field, n, "must be a string")
		return ""
	}
	return n.Value
}

// strs reads a list of scalars, or one scalar as a list of one.
func (d *decoder) strs(field string, n *yaml.Node) []string {
	n, ok := d.deref(n)
	if !ok {
		d.fail(field, nil, "document too large or aliases nested too deep")
		return nil
	}
	switch {
	case isNull(n):
		return nil
	case n.Kind == yaml.ScalarNode:
		return []string{n.Value}
	case n.Kind != yaml.SequenceNode:
		d.fail(field, n, "must be a list of strings")
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		out = append(out, d.str(fmt.Sprintf("%s[%d]", field, i), c))
	}
	return out
}

// strMap reads a mapping of strings to scalars.
func (d *decoder) strMap(field string, n *yaml.Node) map[string]string {
	var m map[string]string
	d.fields(field, n, nil, func(key, f string, v *yaml.Node) bool {
		if m == nil {
			m = map[string]string{}
		}
		m[key] = d.str(f, v)
		return true
	})
	return m
}

func (d *decoder) boolean(field string, n *yaml.Node) bool {
	n, ok := d.deref(n)
	if !ok || n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		d.fail(field, n, "must be true or false")
		return false
	}
	b, _ := strconv.ParseBool(n.Value)
	return b
}

func (d *decoder) integer(field string, n *yaml.Node) int {
	n, ok := d.deref(n)
	if !ok || n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		d.fail(field, n, "must be a whole number")
		return 0
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		d.fail(field, n, "must be a whole number: %v", err)
	}
	return v
}

func (d *decoder) duration(field string, n *yaml.Node) dao.Duration {
	s := d.str(field, n)
	if s == "" {
		return 0
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.fail(field, n, "%q is not a duration such as 30s or 5m", s)
	}
	return dao.Duration(v)
}

// list walks a sequence node.
func (d *decoder) list(field string, n *yaml.Node, f func(i int, v *yaml.Node)) {
	n, ok := d.deref(n)
	if !ok {
		d.fail(field, nil, "document too large or aliases nested too deep")
		return
	}
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(field, n, "must be a list")
		return
	}
	for i, c := range n.Content {
		f(i, c)
	}
}

var (
	pipelineFields = []string{"name", "env", "steps"}
	stepFields     = []string{"name", "image", "entrypoint", "commands", "args", "env", "secrets", "working_dir", "user", "needs", "if", "timeout", "retries", "continue_on_error", "matrix", "cache", "services", "build", "deploy"}
	cacheFields    = []string{"key_files", "paths", "skip_on_hit"}
	serviceFields  = []string{"name", "image", "entrypoint", "commands", "args", "env", "secrets", "ports", "ready_timeout"}
	buildFields    = []string{"ref", "add", "entrypoint", "cmd", "env", "working_dir", "user", "exposed_ports"}
	addFields      = []string{"src", "dst"}
	deployFields   = []string{"service", "image"}
)

func (d *decoder) pipeline(n *yaml.Node, p *Pipeline) {
	d.fields("", n, pipelineFields, func(key, field string, v *yaml.Node) bool {
		switch key {
		case "name":
			p.Name = d.str(field, v)
		case "env":
			p.Env = d.strMap(field, v)
		case "steps":
			d.steps(field, v, p)
		default:
			return false
		}
		return true
	})
}

// steps reads a mapping of names to steps, or a list of steps with names.
func (d *decoder) steps(field string, n *yaml.Node, p *Pipeline) {
	n, ok := d.deref(n)
	if !ok {
		d.fail(field, nil, "document too large or aliases nested too deep")
		return
	}
	if n.Kind == yaml.SequenceNode {
		d.list(field, n, func(i int, v *yaml.Node) {
			s := Step{}
			at := fmt.Sprintf("%s[%d]", field, i)
			d.lines[at] = v.Line
			d.step(at, v, &s, true)
			d.alias(at, stepField(i, s.Name))
			p.Steps = append(p.Steps, s)
		})
		return
	}
	d.fields(field, n, nil, func(key, f string, v *yaml.Node) bool {
		s := Step{Name: key}
		d.step(f, v, &s, false)
		p.Steps = append(p.Steps, s)
		return true
	})
}

func (d *decoder) step(at string, n *yaml.Node, s *Step, named bool) {
	d.fields(at, n, stepFields, func(key, field string, v *yaml.Node) bool {
		switch key {
		case "name":
			if !named {
				d.fail(field, v, "a step's name is its key in steps")
				return true
			}
			s.Name = d.str(field, v)
		case "image":
			s.Image = d.str(field, v)
		case "entrypoint":
			s.Entrypoint = d.strs(field, v)
		case "commands":
			s.Commands = d.strs(field, v)
		case "args":
			s.Args = d.strs(field, v)
		case "env":
			s.Env = d.strMap(field, v)
		case "secrets":
			s.Secrets = d.strs(field, v)
		case "working_dir":
			s.WorkingDir = d.str(field, v)
		case "user":
			s.User = d.str(field, v)
		case "needs":
			s.Needs = d.strs(field, v)
		case "if":
			s.If = d.str(field, v)
		case "timeout":
			s.Timeout = d.duration(field, v)
		case "retries":
			s.Retries = d.integer(field, v)
		case "continue_on_error":
			s.ContinueOnError = d.boolean(field, v)
		case "matrix":
			d.fields(field, v, nil, func(k, f string, vv *yaml.Node) bool {
				if s.Matrix == nil {
					s.Matrix = map[string][]string{}
				}
				s.Matrix[k] = d.strs(f, vv)
				return true
			})
		case "cache":
			c := &Cache{}
			d.fields(field, v, cacheFields, func(k, f string, vv *yaml.Node) bool {
				switch k {
				case "key_files":
					c.KeyFiles = d.strs(f, vv)
				case "paths":
					c.Paths = d.strs(f, vv)
				case "skip_on_hit":
					c.SkipOnHit = d.boolean(f, vv)
				default:
					return false
				}
				return true
			})
			s.Cache = c
		case "services":
			d.services(field, v, s)
		case "build":
			s.Build = d.build(field, v)
		case "deploy":
			dp := &Deploy{}
			d.fields(field, v, deployFields, func(k, f string, vv *yaml.Node) bool {
				switch k {
				case "service":
					dp.Service = d.str(f, vv)
				case "image":
					dp.Image = d.str(f, vv)
				default:
					return false
				}
				return true
			})
			s.Deploy = dp
		default:
			return false
		}
		return true
	})
}

func (d *decoder) services(field string, n *yaml.Node, s *Step) {
	n, ok := d.deref(n)
	if !ok {
		d.fail(field, nil, "document too large or aliases nested too deep")
		return
	}
	if n.Kind == yaml.SequenceNode {
		d.list(field, n, func(i int, v *yaml.Node) {
			sv := Service{}
			at := fmt.Sprintf("%s[%d]", field, i)
			d.service(at, v, &sv, true)
			d.alias(at, serviceField(field[:len(field)-len(".services")], i, sv.Name))
			s.Services = append(s.Services, sv)
		})
		return
	}
	d.fields(field, n, nil, func(key, f string, v *yaml.Node) bool {
		sv := Service{Name: key}
		d.service(f, v, &sv, false)
		s.Services = append(s.Services, sv)
		return true
	})
}

func (d *decoder) service(at string, n *yaml.Node, sv *Service, named bool) {
	d.fields(at, n, serviceFields, func(key, field string, v *yaml.Node) bool {
		switch key {
		case "name":
			if !named {
				d.fail(field, v, "a service's name is its key in services")
				return true
			}
			sv.Name = d.str(field, v)
		case "image":
			sv.Image = d.str(field, v)
		case "entrypoint":
			sv.Entrypoint = d.strs(field, v)
		case "commands":
			sv.Commands = d.strs(field, v)
		case "args":
			sv.Args = d.strs(field, v)
		case "env":
			sv.Env = d.strMap(field, v)
		case "secrets":
			sv.Secrets = d.strs(field, v)
		case "ports":
			d.list(field, v, func(i int, pv *yaml.Node) {
				sv.Ports = append(sv.Ports, d.integer(fmt.Sprintf("%s[%d]", field, i), pv))
			})
		case "ready_timeout":
			sv.ReadyTimeout = d.duration(field, v)
		default:
			return false
		}
		return true
	})
}

func (d *decoder) build(at string, n *yaml.Node) *Build {
	b := &Build{}
	d.fields(at, n, buildFields, func(key, field string, v *yaml.Node) bool {
		switch key {
		case "ref":
			b.Ref = d.str(field, v)
		case "add":
			d.list(field, v, func(i int, av *yaml.Node) {
				var f BuildFile
				d.fields(fmt.Sprintf("%s[%d]", field, i), av, addFields, func(k, ff string, vv *yaml.Node) bool {
					switch k {
					case "src":
						f.Src = d.str(ff, vv)
					case "dst":
						f.Dst = d.str(ff, vv)
					default:
						return false
					}
					return true
				})
				b.Add = append(b.Add, f)
			})
		case "entrypoint":
			b.Entrypoint = d.strs(field, v)
		case "cmd":
			b.Cmd = d.strs(field, v)
		case "env":
			// A list of KEY=VALUE, or a mapping.
			if vv, ok := d.deref(v); ok && vv.Kind == yaml.MappingNode {
				m := d.strMap(field, vv)
				keys := make([]string, 0, len(m))
				for k := range m {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					b.Env = append(b.Env, k+"="+m[k])
				}
			} else {
				b.Env = d.strs(field, v)
			}
		case "working_dir":
			b.WorkingDir = d.str(field, v)
		case "user":
			b.User = d.str(field, v)
		case "exposed_ports":
			b.ExposedPorts = d.strs(field, v)
		default:
			return false
		}
		return true
	})
	return b
}

// suggest returns the known name nearest to s, when it is near enough to be a typo.
func suggest(s string, known []string) string {
	// At most one edit in three letters, and at most two.
	best, bestD := "", min(len(s)/3, 2)+1
	for _, k := range known {
		if dist := editDistance(s, k); dist < bestD {
			best, bestD = k, dist
		}
	}
	// Also catch kebab-case and camelCase spellings of snake_case fields.
	norm := func(x string) string {
		return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(x))
	}
	if i := slices.IndexFunc(known, func(k string) bool { return norm(k) == norm(s) }); i >= 0 {
		return known[i]
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
