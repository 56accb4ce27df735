package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v4"

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
	p, err := Parse(data)
	if pe, ok := err.(*ParseError); ok {
		pe.File = path
	}
	return p, err
}

// Parse reads a pipeline from YAML and validates it. It reports every problem of the file at
// once, those of its YAML and those Validate finds, in the order of their lines, as a
// *dao.ValidationError that names each problem's field and line, such as
// `steps.test.timeout: "5x" is not a duration such as 30s or 5m (line 7)`. A YAML syntax
// error is the field "yaml", at the line and column where the parser found it, such as
// `yaml: did not find expected key while parsing a block mapping from line 2, column 3 (line
// 5, column 4)`; a file of more than one YAML document, unknown fields and duplicate keys are
// refused.
func Parse(data []byte) (*Pipeline, error) {
	if len(data) > maxYAMLSize {
		d := newDecoder(nil)
		d.problem("yaml", nil, "larger than %d bytes", maxYAMLSize)
		return nil, d.err()
	}
	d := newDecoder(data)
	root, ok := d.document()
	if !ok {
		return nil, d.err()
	}
	p := &Pipeline{}
	if root != nil && !isNull(root) {
		d.pipeline(root, p)
	}
	var pr problems
	p.validate(&pr)
	for _, fe := range pr.list {
		d.validationProblem(fe)
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// A decoder walks the YAML tree into a Pipeline, recording problems and where each field
// was.
type decoder struct {
	src   []byte
	probs []problem
	pos   map[string]pos        // where each field was: its key, or its item of a list
	vals  map[string]*yaml.Node // the scalar node of each string field, for columns within it
	bad   map[string]bool       // fields whose value could not be decoded
	nodes int
	lines []int // where the lines of src start, once needed (lineStarts)
	// spelled maps the field path of a field given under another spelling (an alias, such as
	// "steps.test.commands") to the path as written ("steps.test.run"), so that what
	// Validate says of it names what the file says.
	spelled map[string]string
	// hints explains, for the mapping at a field path, keys it does not take that a GitHub
	// Actions or Woodpecker file has.
	hints map[string]map[string]string
}

// problem is one problem of a file, at a line and column (0 when not known).
type problem struct {
	field, reason string
	pos
}

type pos struct{ line, col int }

func newDecoder(data []byte) *decoder {
	return &decoder{src: data, pos: map[string]pos{}, vals: map[string]*yaml.Node{}, bad: map[string]bool{},
		spelled: map[string]string{}, hints: map[string]map[string]string{"": topHints}}
}

// err returns the problems in the order of their lines, those without a line first, as a
// *dao.ValidationError, or nil.
func (d *decoder) err() error {
	if len(d.probs) == 0 {
		return nil
	}
	slices.SortStableFunc(d.probs, func(a, b problem) int {
		if a.line != b.line {
			return a.line - b.line
		}
		return a.col - b.col
	})
	out := make([]dao.FieldError, len(d.probs))
	list := make([]Problem, len(d.probs))
	for i, p := range d.probs {
		out[i] = dao.FieldError{Field: p.field, Reason: p.reason + p.pos.String()}
		list[i] = Problem{Field: p.field, Line: p.line, Column: p.col, Reason: p.reason}
	}
	return &ParseError{Problems: list, validation: &dao.ValidationError{What: "pipeline", Errors: out}}
}

// String is " (line L)", " (line L, column C)" or "".
func (p pos) String() string {
	switch {
	case p.line <= 0:
		return ""
	case p.col <= 0:
		return fmt.Sprintf(" (line %d)", p.line)
	}
	return fmt.Sprintf(" (line %d, column %d)", p.line, p.col)
}

// fail records a problem of field at the line of n, if any. A field that failed to decode is
// bad: what Validate finds at it or under it follows from that, and is not repeated.
func (d *decoder) fail(field string, n *yaml.Node, format string, args ...any) {
	d.problem(field, n, format, args...)
	d.bad[field] = true
}

// problem records a problem of field at the line of n, if any, that leaves its value alone.
func (d *decoder) problem(field string, n *yaml.Node, format string, args ...any) {
	p := problem{field: field, reason: fmt.Sprintf(format, args...)}
	if n != nil && n.Line > 0 {
		p.line = n.Line
	}
	d.probs = append(d.probs, p)
}

// validationProblem records a problem Validate found, at the line of its field, unless it
// follows from a field that failed to decode. A problem at a column of an expression is put
// at its line and column in the file, where the string stands there as it is.
func (d *decoder) validationProblem(fe dao.FieldError) {
	if d.bad["yaml"] {
		return // the file is not a mapping of name, env and steps
	}
	fe.Field = d.respell(fe.Field)
	for f := fe.Field; ; {
		if d.bad[f] {
			return
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	p := problem{field: fe.Field, reason: fe.Reason, pos: pos{line: d.lineOf(fe.Field)}}
	if col, rest, ok := cutColumn(fe.Reason); ok {
		if at, ok := d.fileColumn(fe.Field, col); ok {
			p.reason, p.pos = rest, at
		}
	}
	d.probs = append(d.probs, p)
}

// respell returns field as the file spells it: a field given under an alias by its alias.
func (d *decoder) respell(field string) string {
	for f := field; ; {
		if alias, ok := d.spelled[f]; ok {
			return alias + field[len(f):]
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			return field
		}
		f = f[:i]
	}
}

// cutColumn splits a reason "column N: rest" into N and rest.
func cutColumn(reason string) (int, string, bool) {
	num, rest, ok := strings.Cut(strings.TrimPrefix(reason, "column "), ": ")
	if !ok || !strings.HasPrefix(reason, "column ") {
		return 0, "", false
	}
	col, err := strconv.Atoi(num)
	if err != nil || col < 1 {
		return 0, "", false
	}
	return col, rest, true
}

// fileColumn returns where byte col (1-based) of the string of field is in the file, when the
// string stands there on one line as it is: plain, or quoted without escapes.
func (d *decoder) fileColumn(field string, col int) (pos, bool) {
	n := d.vals[field]
	if n == nil || n.Line < 1 || n.Column < 1 || col > len(n.Value)+1 || strings.ContainsAny(n.Value, "\n\r\u0085\u2028\u2029") {
		return pos{}, false
	}
	off, ok := d.offset(n.Line, n.Column)
	if !ok {
		return pos{}, false
	}
	text := d.src[off:]
	startCol := n.Column
	switch n.Style {
	case 0, yaml.FlowStyle:
	case yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle:
		text, startCol = text[1:], startCol+1
	default:
		return pos{}, false
	}
	if !bytes.HasPrefix(text, []byte(n.Value)) {
		return pos{}, false
	}
	return pos{line: n.Line, col: startCol + utf8.RuneCountInString(n.Value[:col-1])}, true
}

// offset returns the byte offset of a line and column (both 1-based, the column in
// characters) of the source.
func (d *decoder) offset(line, col int) (int, bool) {
	starts := d.lineStarts()
	if line > len(starts) {
		return 0, false
	}
	off := starts[line-1]
	for c := 1; c < col; c++ {
		if off >= len(d.src) || lineBreak(d.src[off:]) > 0 {
			return 0, false
		}
		_, size := utf8.DecodeRune(d.src[off:])
		off += size
	}
	return off, off < len(d.src)
}

// lineStarts returns the byte offsets where the lines of the source start, its line breaks
// being YAML's: "\r\n", "\r", "\n", and U+0085, U+2028 and U+2029.
func (d *decoder) lineStarts() []int {
	if d.lines != nil {
		return d.lines
	}
	d.lines = []int{0}
	for i := 0; i < len(d.src); {
		if n := lineBreak(d.src[i:]); n > 0 {
			i += n
			d.lines = append(d.lines, i)
			continue
		}
		i++
	}
	return d.lines
}

// lineBreak returns the length of the line break that starts b, or 0.
func lineBreak(b []byte) int {
	switch {
	case len(b) == 0:
		return 0
	case b[0] == '\n':
		return 1
	case b[0] == '\r':
		if len(b) > 1 && b[1] == '\n' {
			return 2
		}
		return 1
	case bytes.HasPrefix(b, []byte("\u0085")):
		return 2
	case bytes.HasPrefix(b, []byte("\u2028")), bytes.HasPrefix(b, []byte("\u2029")):
		return 3
	}
	return 0
}

// lineOf returns the line of field, or of the nearest enclosing field that has one.
func (d *decoder) lineOf(field string) int {
	for f := field; f != ""; {
		if p, ok := d.pos[f]; ok {
			return p.line
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return 0
}

// document reads the file's one YAML document and returns its root node (nil for an empty
// file). On a syntax error it records the error, at the line and column where the parser
// found it, and returns false. A second document is a problem too.
func (d *decoder) document() (*yaml.Node, bool) {
	l, err := yaml.NewLoader(bytes.NewReader(d.src))
	if err != nil {
		d.syntaxError(err)
		return nil, false
	}
	var doc yaml.Node
	if err := l.Load(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		d.syntaxError(err)
		return nil, false
	}
	var next yaml.Node
	switch err := l.Load(&next); {
	case err == nil:
		d.probs = append(d.probs, problem{field: "yaml", reason: "a second YAML document starts here; a pipeline is one document", pos: pos{line: next.Line}})
	case !errors.Is(err, io.EOF):
		d.syntaxError(err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if root.Kind == 0 || root.Kind == yaml.DocumentNode {
		return nil, true
	}
	return root, true
}

// syntaxError records an error of the YAML parser. yaml.v3, which Parse used before, named
// only the line where the enclosing construct began, as counted from 0 for parser errors;
// go.yaml.in/yaml/v4 gives both that and the place of the problem.
func (d *decoder) syntaxError(err error) {
	var le *yaml.LoadError
	if !errors.As(err, &le) {
		d.probs = append(d.probs, problem{field: "yaml", reason: strings.TrimPrefix(err.Error(), "yaml: ")})
		return
	}
	at := pos{line: le.Mark.Line, col: le.Mark.Column}
	ctx, ctxAt := le.ContextMsg, pos{line: le.ContextMark.Line, col: le.ContextMark.Column}
	reason := le.Message
	switch {
	case (ctx == "" || ctxAt.line <= 0 || ctxAt == at) && d.atEnd(at):
		reason += " at the end of the file"
	case ctx == "" || ctxAt.line <= 0 || ctxAt == at:
	case d.atEnd(at):
		// Something that is never closed, such as a quoted string: the problem is where it
		// starts.
		what := strings.TrimPrefix(strings.TrimPrefix(ctx, "while scanning "), "while parsing ")
		reason, at = fmt.Sprintf("%s, and the file ends before %s is closed", le.Message, what), ctxAt
	default:
		reason = fmt.Sprintf("%s %s from line %d, column %d", le.Message, ctx, ctxAt.line, ctxAt.col)
	}
	d.probs = append(d.probs, problem{field: "yaml", reason: reason, pos: at})
}

// atEnd reports whether p is at the end of the source, or past it.
func (d *decoder) atEnd(p pos) bool {
	starts := d.lineStarts()
	endCol := utf8.RuneCount(d.src[starts[len(starts)-1]:]) + 1
	return p.line > len(starts) || p.line == len(starts) && p.col >= endCol
}

// deref follows aliases and counts nodes, so that a document of nested aliases cannot make
// the decoder walk forever. It records why it cannot give the node of field: aliases nested
// too deep, or, once for the document, too many nodes.
func (d *decoder) deref(field string, n *yaml.Node) (*yaml.Node, bool) {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	d.nodes++
	switch {
	case d.nodes == maxYAMLNodes+1:
		d.problem("yaml", nil, "more than %d nodes, aliases counted: too large a pipeline", maxYAMLNodes)
		fallthrough
	case d.nodes > maxYAMLNodes:
		d.bad[field] = true
		return nil, false
	case n == nil || n.Kind == yaml.AliasNode:
		d.fail(field, nil, "aliases nested too deep")
		return nil, false
	}
	return n, true
}

// nameOf returns the "name" of a mapping node, if it has a string one, and records its line
// as that of at.name: steps and services of a list are named by it.
func (d *decoder) nameOf(at string, n *yaml.Node) string {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "name" {
			d.pos[at+".name"] = pos{line: k.Line, col: k.Column}
			if v := resolve(n.Content[i+1]); v != nil && v.Kind == yaml.ScalarNode && !isNull(v) {
				return v.Value
			}
			return ""
		}
	}
	return ""
}

// resolve follows aliases, as deref does, but without counting nodes.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i == 100 {
			return nil
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// fields walks a mapping node, calling f for each key with its value; it refuses a node that
// is not a mapping, duplicate keys and keys f does not know (f returns false), suggesting the
// nearest known one.
func (d *decoder) fields(at string, n *yaml.Node, known []string, f func(key, field string, v *yaml.Node) bool) {
	self := at // the mapping's own field
	if at == "" {
		self = "yaml"
	}
	n, ok := d.deref(self, n)
	if !ok {
		return
	}
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		if at == "" {
			d.fail(self, n, "must be a mapping of name, env and steps")
		} else {
			d.fail(self, n, "must be a mapping")
		}
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.problem(self, k, "keys must be strings")
			continue
		}
		field := join(at, k.Value)
		if seen[k.Value] {
			d.problem(field, k, "is given twice")
			continue
		}
		seen[k.Value] = true
		d.pos[field] = pos{line: k.Line, col: k.Column}
		if k.Value == "<<" {
			d.problem(field, k, "merge keys are not supported")
			continue
		}
		if !f(k.Value, field, v) {
			msg := "unknown field"
			if h, ok := d.hints[at][k.Value]; ok {
				msg += "; " + h
			} else if s := suggest(k.Value, known); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			d.problem(field, k, "%s", msg)
		}
	}
}

// join returns the field path of key in the mapping at "at" ("" for the file's top level).
// An empty key is written "".
func join(at, key string) string {
	if key == "" {
		key = `""`
	}
	if at == "" {
		return key
	}
	return at + "." + key
}

// str reads a scalar as a string; null is "".
func (d *decoder) str(field string, n *yaml.Node) string {
	n, ok := d.deref(field, n)
	if !ok {
		return ""
	}
	if isNull(n) {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		d.fail(field, n, "must be a string")
		return ""
	}
	d.vals[field] = n
	return n.Value
}

// strs reads a list of scalars, or one scalar as a list of one.
func (d *decoder) strs(field string, n *yaml.Node) []string {
	n, ok := d.deref(field, n)
	if !ok {
		return nil
	}
	switch {
	case isNull(n):
		return nil
	case n.Kind == yaml.ScalarNode:
		// One string is a list of one: what is said of its first item is said of it.
		d.vals[field+"[0]"] = n
		return []string{n.Value}
	case n.Kind != yaml.SequenceNode:
		d.fail(field, n, "must be a list of strings")
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		item := fmt.Sprintf("%s[%d]", field, i)
		d.pos[item] = pos{line: c.Line, col: c.Column}
		out = append(out, d.str(item, c))
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
	n, ok := d.deref(field, n)
	if !ok {
		return false
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		if strings.Contains(n.Value, "${{") {
			d.fail(field, n, "must be true or false; an expression is not evaluated here")
		} else {
			d.fail(field, n, "must be true or false")
		}
		return false
	}
	b, _ := strconv.ParseBool(n.Value)
	return b
}

func (d *decoder) integer(field string, n *yaml.Node) int {
	n, ok := d.deref(field, n)
	if !ok {
		return 0
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
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
	n, ok := d.deref(field, n)
	if !ok {
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
		d.pos[fmt.Sprintf("%s[%d]", field, i)] = pos{line: c.Line, col: c.Column}
		f(i, c)
	}
}

var (
	pipelineFields = []string{"name", "env", "steps"}
	stepFields     = []string{"name", "image", "entrypoint", "commands", "shell", "args", "env", "secrets", "working_dir", "user", "needs", "if", "timeout", "retries", "continue_on_error", "matrix", "fail_fast", "max_parallel", "cache", "services", "upload", "download", "build", "deploy"}
	strategyFields = []string{"matrix", "fail_fast", "max_parallel"}
	artifactFields = []string{"name", "paths"}
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
	n, ok := d.deref(field, n)
	if !ok {
		return
	}
	if n.Kind == yaml.SequenceNode {
		// A step of the list is "steps[i]" until its name is known, and "steps.<name>" in
		// what Validate says of it (stepPaths): its name is read first, so that its fields
		// are recorded under the path Validate gives them.
		seen := map[string]bool{}
		d.list(field, n, func(i int, v *yaml.Node) {
			byIndex := fmt.Sprintf("%s[%d]", field, i)
			name := d.nameOf(byIndex, v)
			at := byIndex
			if name != "" && !seen[name] {
				seen[name] = true
				at = stepField(i, name)
				d.pos[at] = d.pos[byIndex]
			}
			s := Step{}
			d.step(at, v, &s, true)
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

// The spellings of a step's fields that GitHub Actions and Woodpecker users write, for
// the field they mean (see the package documentation).
var stepAliases = map[string]string{
	"run":               "commands",
	"continue-on-error": "continue_on_error",
	"timeout-minutes":   "timeout",
	"working-directory": "working_dir",
	"depends_on":        "needs",
	"environment":       "env",
	"when":              "if",
	"fail-fast":         "fail_fast",
	"max-parallel":      "max_parallel",
}

// Keys of GitHub Actions and Woodpecker files that Dao does not take, and what to write.
var (
	topHints = map[string]string{
		"jobs": `a Dao pipeline is one job: list its steps under "steps", and run several pipelines for several jobs`,
		"on":   "a Dao pipeline runs when its caller runs it; it has no triggers",
		"when": `put "if" on the steps`,
	}
	stepHints = map[string]string{
		"uses":      "Dao runs images, not actions: give an image and run (or commands)",
		"with":      "Dao runs images, not actions: give the step's values in env",
		"id":        "a step's id is its key in steps (or its name in a list of steps)",
		"runs-on":   "a step runs on the Runner's Runtime: give its image",
		"container": `give the step's image as "image"`,
		"outputs":   "a step writes its outputs as key=value lines to $DAO_OUTPUT (or $GITHUB_OUTPUT)",
		"pull":      "the image must be in containerd's image store already",
	}
)

// stepField decodes the field of canonical name key (a Dao key) of a step.
type stepFieldSet struct {
	d     *decoder
	at    string
	given map[string]string // canonical key -> the key as written
}

// claim records that key (canonical) is given as written, and reports false, recording a
// problem, when it was given already under another spelling.
func (g *stepFieldSet) claim(canonical, written, field string, k *yaml.Node) bool {
	if prev, ok := g.given[canonical]; ok {
		g.d.problem(field, k, "is %q again: give only one of %q and %q", canonical, prev, written)
		return false
	}
	g.given[canonical] = written
	if written != canonical {
		g.d.spelled[join(g.at, canonical)] = field
		g.d.pos[join(g.at, canonical)] = g.d.pos[field]
	}
	return true
}

func (d *decoder) step(at string, n *yaml.Node, s *Step, named bool) {
	g := &stepFieldSet{d: d, at: at, given: map[string]string{}}
	d.hints[at] = stepHints
	defer delete(d.hints, at)
	d.fields(at, n, stepFields, func(written, field string, v *yaml.Node) bool {
		key := written
		if canonical, ok := stepAliases[written]; ok {
			key = canonical
		}
		if key == "strategy" {
			d.strategy(g, field, v, s)
			return true
		}
		if !slices.Contains(stepFields, key) {
			return false
		}
		if !g.claim(key, written, field, keyNode(n, written)) {
			return true
		}
		switch key {
		case "name":
			if !named {
				d.problem(field, v, "a step's name is its key in steps")
				return true
			}
			s.Name = d.str(field, v)
		case "image":
			if s.Image = d.str(field, v); d.bad[field] {
				// An image was given, if not a string: the step is a container step.
				s.Image = "?"
			}
		case "entrypoint":
			s.Entrypoint = d.strs(field, v)
		case "commands":
			s.Commands = d.strs(field, v)
		case "shell":
			s.Shell = d.str(field, v)
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
			if written == "when" {
				s.If = d.when(field, v)
			} else {
				s.If = d.str(field, v)
			}
		case "timeout":
			if written == "timeout-minutes" {
				s.Timeout = d.minutes(field, v)
			} else {
				s.Timeout = d.duration(field, v)
			}
		case "retries":
			s.Retries = d.integer(field, v)
		case "continue_on_error":
			s.ContinueOnError = d.boolean(field, v)
		case "matrix":
			d.matrix(field, v, s)
		case "fail_fast":
			s.FailFast = d.boolean(field, v)
		case "max_parallel":
			s.MaxParallel = d.integer(field, v)
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
		case "upload":
			u := &Artifact{}
			d.fields(field, v, artifactFields, func(k, f string, vv *yaml.Node) bool {
				switch k {
				case "name":
					u.Name = d.str(f, vv)
				case "paths", "path":
					u.Paths = d.strs(f, vv)
				default:
					return false
				}
				return true
			})
			s.Upload = u
		case "download":
			s.Download = d.strs(field, v)
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

// keyNode returns the key node of key in the mapping n, for its line.
func keyNode(n *yaml.Node, key string) *yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return nil
}

// matrix reads a matrix: keys to lists of values, and "include" and "exclude", lists of
// mappings of keys to values.
func (d *decoder) matrix(field string, n *yaml.Node, s *Step) {
	d.fields(field, n, nil, func(k, f string, v *yaml.Node) bool {
		switch k {
		case "include", "exclude":
			var list []map[string]string
			d.list(f, v, func(i int, item *yaml.Node) {
				m := d.strMap(fmt.Sprintf("%s[%d]", f, i), item)
				if m == nil {
					m = map[string]string{}
				}
				list = append(list, m)
			})
			if k == "include" {
				s.MatrixInclude = list
			} else {
				s.MatrixExclude = list
			}
		default:
			if s.Matrix == nil {
				s.Matrix = map[string][]string{}
			}
			s.Matrix[k] = d.strs(f, v)
		}
		return true
	})
}

// strategy reads GitHub Actions' strategy: matrix, fail-fast (true unless it says false)
// and max-parallel.
func (d *decoder) strategy(g *stepFieldSet, field string, n *yaml.Node, s *Step) {
	if _, ok := g.given["fail_fast"]; !ok {
		s.FailFast = true
	}
	d.fields(field, n, strategyFields, func(written, f string, v *yaml.Node) bool {
		key := written
		if canonical, ok := stepAliases[written]; ok {
			key = canonical
		}
		if !slices.Contains(strategyFields, key) {
			return false
		}
		if !g.claim(key, "strategy."+written, f, keyNode(resolve(n), written)) {
			return true
		}
		switch key {
		case "matrix":
			d.matrix(f, v, s)
		case "fail_fast":
			s.FailFast = d.boolean(f, v)
		case "max_parallel":
			s.MaxParallel = d.integer(f, v)
		}
		return true
	})
}

// minutes reads GitHub Actions' timeout-minutes: a number of minutes.
func (d *decoder) minutes(field string, n *yaml.Node) dao.Duration {
	n, ok := d.deref(field, n)
	if !ok {
		return 0
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" && n.Tag != "!!float" {
		d.fail(field, n, "must be a number of minutes, such as 10 or 0.5")
		return 0
	}
	m, err := strconv.ParseFloat(n.Value, 64)
	if err != nil || m < 0 || m > float64(1<<62)/float64(time.Minute) {
		d.fail(field, n, "%s is not a number of minutes from 0 to a few million", n.Value)
		return 0
	}
	return dao.Duration(m * float64(time.Minute))
}

// when reads Woodpecker's when, as far as it says how the steps the step needs ended:
// "status: [success]" is success() (the default), "status: [failure]" failure(), both
// always(). A list of whens holds when one of them does. Other conditions (branch, event,
// and the like) have no meaning for Dao: they are refused for "if".
func (d *decoder) when(field string, n *yaml.Node) string {
	n, ok := d.deref(field, n)
	if !ok {
		return ""
	}
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	var conds []string
	for i, item := range items {
		f := field
		if n.Kind == yaml.SequenceNode {
			f = fmt.Sprintf("%s[%d]", field, i)
			d.pos[f] = pos{line: item.Line, col: item.Column}
		}
		cond := ""
		d.fields(f, item, []string{"status"}, func(k, kf string, v *yaml.Node) bool {
			if k != "status" {
				d.problem(kf, keyNode(item, k), `Dao has no %q condition; write the step's condition as "if", such as if: failure()`, k)
				d.bad[kf] = true
				return true
			}
			var ok, bad bool
			for j, st := range d.strs(kf, v) {
				switch st {
				case "success":
					ok = true
				case "failure":
					bad = true
				default:
					d.fail(fmt.Sprintf("%s[%d]", kf, j), v, "%q is not a status: want success or failure", st)
				}
			}
			switch {
			case ok && bad:
				cond = "always()"
			case bad:
				cond = "failure()"
			case ok:
				cond = "success()"
			}
			return true
		})
		if cond == "" {
			cond = "success()"
		}
		conds = append(conds, cond)
	}
	if len(conds) == 0 {
		return ""
	}
	return strings.Join(conds, " || ")
}

func (d *decoder) services(field string, n *yaml.Node, s *Step) {
	n, ok := d.deref(field, n)
	if !ok {
		return
	}
	if n.Kind == yaml.SequenceNode {
		// As steps: a service of the list is recorded under the path Validate gives it.
		step := strings.TrimSuffix(field, ".services")
		seen := map[string]bool{}
		d.list(field, n, func(i int, v *yaml.Node) {
			byIndex := fmt.Sprintf("%s[%d]", field, i)
			name := d.nameOf(byIndex, v)
			at := byIndex
			if name != "" && !seen[name] {
				seen[name] = true
				at = serviceField(step, i, name)
				d.pos[at] = d.pos[byIndex]
			}
			sv := Service{}
			d.service(at, v, &sv, true)
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
				d.problem(field, v, "a service's name is its key in services")
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
			if vv, ok := d.deref(field, v); ok && vv.Kind == yaml.MappingNode {
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
