package pipeline

import (
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/distribution/reference"

	"github.com/opendao/dao"
)

// Limits of a pipeline.
const (
	// MaxRetries is the most retries a step may ask for.
	MaxRetries = 10
	// MaxMatrixInstances is the most instances a matrix may fan a step out to.
	MaxMatrixInstances = 256
	maxStepName        = 32
	maxServiceName     = 16
)

var (
	stepNamePattern    = regexp.MustCompile(`^[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*$`)
	serviceNamePattern = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)
	envNamePattern     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	keyPattern         = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
	exposedPortPattern = regexp.MustCompile(`^[0-9]{1,5}(/(tcp|udp|sctp))?$`)
)

// problems collects what is wrong while a pipeline is validated.
type problems struct {
	list []dao.FieldError
}

func (p *problems) add(field, format string, args ...any) {
	p.list = append(p.list, dao.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &dao.ValidationError{What: "pipeline", Errors: p.list}
}

// Validate checks the pipeline and returns a *dao.ValidationError naming every problem by its
// field, such as "steps.test.needs[0]: unknown step \"lint\"". It refuses unknown and
// duplicate step names, cycles among needs, expressions that do not parse (with the column)
// or read what the step cannot see, and fields that do not fit the step's kind.
func (p *Pipeline) Validate() error {
	var pr problems
	p.validate(&pr)
	return pr.err()
}

func (p *Pipeline) validate(pr *problems) {
	validateEnv(pr, "env", p.Env)
	if len(p.Steps) == 0 {
		pr.add("steps", "must list at least one step")
		return
	}
	paths := stepPaths(p.Steps)
	index := make(map[string]int, len(p.Steps))
	for i := range p.Steps {
		s := &p.Steps[i]
		at := paths[i]
		switch {
		case s.Name == "":
			pr.add(at+".name", "must not be empty")
		case len(s.Name) > maxStepName || !stepNamePattern.MatchString(s.Name):
			pr.add(at+".name", "%q must be letters and digits with single '-' or '_' between them, at most %d bytes", s.Name, maxStepName)
		default:
			if j, dup := index[s.Name]; dup {
				pr.add(fmt.Sprintf("steps[%d].name", i), "%q is also the name of steps[%d]", s.Name, j)
			} else {
				index[s.Name] = i
			}
		}
	}
	dagOK := true
	for i := range p.Steps {
		s := &p.Steps[i]
		at := paths[i]
		seen := make(map[string]bool, len(s.Needs))
		for j, n := range s.Needs {
			field := fmt.Sprintf("%s.needs[%d]", at, j)
			switch _, known := index[n]; {
			case n == s.Name:
				pr.add(field, "a step cannot need itself")
				dagOK = false
			case !known:
				pr.add(field, "unknown step %q", n)
				dagOK = false
			case seen[n]:
				pr.add(field, "%q is listed twice", n)
			}
			seen[n] = true
		}
	}
	var order []int
	if dagOK {
		var cycle []string
		if order, cycle = p.order(index); cycle != nil {
			pr.add("steps."+cycle[0]+".needs", "cycle: %s", strings.Join(cycle, " -> "))
			dagOK = false
		}
	}
	if dagOK {
		p.checkDownloads(pr, paths, index)
	}
	// What expressions read of other steps is checked once every step is: whether a step
	// needs another, directly or not, is answered for all of them at once.
	var reads []stepRead
	for i := range p.Steps {
		p.Steps[i].validate(pr, paths[i], index, func(field string, col int, name string) {
			if dagOK {
				reads = append(reads, stepRead{at: len(pr.list), field: field, col: col, from: i, to: index[name], name: name})
			}
		})
	}
	if len(reads) > 0 {
		p.checkReads(pr, index, order, reads)
	}
}

// stepRead is an expression of step from that reads step to: a problem at field unless from
// needs to, directly or not. at is where the problem goes in the list of problems.
type stepRead struct {
	at, col  int
	field    string
	from, to int
	name     string
}

// checkReads adds a problem for each read of a step that its step does not need, directly or
// not, in its place among the others. It takes O((steps + needs) * ceil(t / 64)) time for the t
// steps read by steps that do not need them directly: linear for a given number of such
// steps. order has every step after the steps it needs.
func (p *Pipeline) checkReads(pr *problems, index map[string]int, order []int, reads []stepRead) {
	bit := map[int]int{} // the steps read but not needed directly, by their bit
	from, direct := -1, map[string]bool{}
	for k, r := range reads {
		if r.from != from { // reads come step by step
			from = r.from
			if len(direct) > 64 {
				direct = map[string]bool{} // clearing a large map costs its size
			} else {
				clear(direct)
			}
			for _, n := range p.Steps[from].Needs {
				direct[n] = true
			}
		}
		if r.from != r.to && direct[r.name] {
			reads[k].to = -1 // fine
			continue
		}
		if _, ok := bit[r.to]; !ok {
			bit[r.to] = len(bit)
		}
	}
	var reach []uint64 // words bits per step: the read steps it needs, directly or not
	words := (len(bit) + 63) / 64
	if words > 0 {
		reach = make([]uint64, len(p.Steps)*words)
		for _, i := range order {
			row := reach[i*words : (i+1)*words]
			for _, n := range p.Steps[i].Needs {
				j := index[n]
				for w, v := range reach[j*words : (j+1)*words] {
					row[w] |= v
				}
				if b, ok := bit[j]; ok {
					row[b/64] |= 1 << (b % 64)
				}
			}
		}
	}
	var added []stepRead
	for _, r := range reads {
		if r.to < 0 {
			continue
		}
		b := bit[r.to]
		if reach[r.from*words+b/64]&(1<<(b%64)) == 0 {
			added = append(added, r)
		}
	}
	if len(added) == 0 {
		return
	}
	list := make([]dao.FieldError, 0, len(pr.list)+len(added))
	next := 0
	for _, r := range added {
		list = append(list, pr.list[next:r.at]...)
		next = r.at
		list = append(list, dao.FieldError{Field: r.field, Reason: fmt.Sprintf("column %d: step %q is not among the steps this one needs, directly or not", r.col, r.name)})
	}
	pr.list = append(list, pr.list[next:]...)
}

// order returns the indexes of the steps in an order where every step comes after the steps
// it needs; or, when needs make a cycle, the names along one, the first repeated at the end.
// Unknown needs are left out. It takes O(steps + needs) time, without recursion.
func (p *Pipeline) order(index map[string]int) ([]int, []string) {
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(p.Steps))
	order := make([]int, 0, len(p.Steps))
	type frame struct{ step, next int } // next: the index in Needs to look at next
	var stack []frame
	for root := range p.Steps {
		if color[root] != white {
			continue
		}
		color[root] = grey
		stack = append(stack[:0], frame{root, 0})
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			needs := p.Steps[top.step].Needs
			if top.next == len(needs) {
				color[top.step] = black
				order = append(order, top.step)
				stack = stack[:len(stack)-1]
				continue
			}
			n := needs[top.next]
			top.next++
			j, ok := index[n]
			if !ok {
				continue
			}
			switch color[j] {
			case grey:
				k := slices.IndexFunc(stack, func(f frame) bool { return f.step == j })
				cycle := make([]string, 0, len(stack)-k+1)
				for _, f := range stack[k:] {
					cycle = append(cycle, p.Steps[f.step].Name)
				}
				return nil, append(cycle, n)
			case white:
				color[j] = grey
				stack = append(stack, frame{j, 0})
			}
		}
	}
	return order, nil
}

// validate checks one step. It hands each expression that reads another step to reads, with
// its field and column, for the caller to check that the step needs it, directly or not.
func (s *Step) validate(pr *problems, at string, index map[string]int, reads func(field string, col int, name string)) {
	kinds := 0
	if s.Image != "" {
		kinds++
	}
	if s.Build != nil {
		kinds++
	}
	if s.Deploy != nil {
		kinds++
	}
	switch {
	case kinds == 0:
		pr.add(at, "must have an image (a container step), a build or a deploy")
	case kinds > 1:
		pr.add(at, "must have only one of image, build and deploy")
	}
	k := s.kind()
	if k != kindContainer {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"entrypoint", len(s.Entrypoint) > 0}, {"commands", len(s.Commands) > 0},
			{"args", len(s.Args) > 0}, {"env", len(s.Env) > 0}, {"secrets", len(s.Secrets) > 0},
			{"working_dir", s.WorkingDir != ""}, {"user", s.User != ""},
			{"cache", s.Cache != nil}, {"services", len(s.Services) > 0},
			{"shell", s.Shell != ""}, {"upload", s.Upload != nil}, {"download", len(s.Download) > 0},
		} {
			if f.set {
				pr.add(at+"."+f.name, "only container steps (with an image) have %s", f.name)
			}
		}
	}
	if k == kindContainer && s.Image != "" {
		checkImage(pr, at+".image", s.Image)
		checkCommand(pr, at, s.Entrypoint, s.Commands, s.Args)
		validateEnv(pr, at+".env", s.Env)
		validateSecrets(pr, at+".secrets", s.Secrets)
		if strings.IndexByte(s.WorkingDir, 0) >= 0 {
			pr.add(at+".working_dir", "must not contain a NUL byte")
		}
		if strings.ContainsAny(s.User, " \t\n\x00") || strings.Count(s.User, ":") > 1 {
			pr.add(at+".user", "%q must be uid, uid:gid, name or name:group", s.User)
		}
		if s.Cache != nil {
			s.Cache.validate(pr, at+".cache")
		}
		s.validateShell(pr, at)
		s.validateArtifacts(pr, at)
		names := make(map[string]int, len(s.Services))
		for i, sat := range servicePaths(at, s.Services) {
			sv := &s.Services[i]
			if j, dup := names[sv.Name]; dup && sv.Name != "" {
				pr.add(sat+".name", "%q is also the name of services[%d]", sv.Name, j)
			} else {
				names[sv.Name] = i
			}
			sv.validate(pr, sat)
		}
	}
	if s.Timeout < 0 {
		pr.add(at+".timeout", "must be >= 0, got %s", s.Timeout)
	}
	if s.Retries < 0 || s.Retries > MaxRetries {
		pr.add(at+".retries", "must be 0-%d, got %d", MaxRetries, s.Retries)
	}
	s.validateMatrix(pr, at)
	if b := s.Build; b != nil {
		b.validate(pr, at+".build")
	}
	if d := s.Deploy; d != nil {
		if strings.TrimSpace(d.Service) == "" {
			pr.add(at+".deploy.service", "must not be empty")
		}
		if strings.TrimSpace(d.Image) == "" {
			pr.add(at+".deploy.image", "must not be empty")
		} else {
			checkImage(pr, at+".deploy.image", d.Image)
		}
	}

	// Expressions: they must parse, and read only what the step can see.
	check := func(field string, refs []*refExpr) {
		for _, r := range refs {
			switch r.path[0] {
			case "matrix":
				if len(r.path) > 1 && !s.hasMatrixKey(r.path[1]) {
					pr.add(field, "column %d: matrix key %q is not in the step's matrix", r.pos+1, r.path[1])
				}
			case "steps":
				name := r.path[1]
				if _, ok := index[name]; !ok {
					pr.add(field, "column %d: unknown step %q", r.pos+1, name)
				} else {
					reads(field, r.pos+1, name)
				}
			}
		}
	}
	if s.If != "" {
		x, err := parseCondition(s.If)
		if err != nil {
			pr.add(at+".if", "%v", err)
		} else {
			check(at+".if", refsOf(x))
		}
	}
	visitStrings(s, at, func(field, v string, _ func(string)) {
		t, err := parseTemplate(v)
		if err != nil {
			pr.add(field, "%v", err)
			return
		}
		check(field, t.refs())
	})
}

// checkImage checks an image reference unless it holds an expression.
func checkImage(pr *problems, field, ref string) {
	if strings.Contains(ref, "${{") {
		return
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		pr.add(field, "%q is not an image reference: %v", ref, err)
	}
}

// checkCommand checks the combination of entrypoint, commands and args at "at".
func checkCommand(pr *problems, at string, entrypoint, commands, args []string) {
	if len(commands) > 0 && len(args) > 0 {
		pr.add(at+".args", "commands and args do not go together: commands run through /bin/sh -c")
	}
	if len(commands) > 0 && len(entrypoint) > 0 {
		pr.add(at+".entrypoint", "commands and entrypoint do not go together: commands run through /bin/sh -c")
	}
	for _, f := range []struct {
		name string
		l    []string
	}{{"entrypoint", entrypoint}, {"commands", commands}, {"args", args}} {
		for i, v := range f.l {
			if strings.IndexByte(v, 0) >= 0 {
				pr.add(fmt.Sprintf("%s.%s[%d]", at, f.name, i), "must not contain a NUL byte")
			}
		}
	}
}

func validateEnv(pr *problems, field string, env map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if !envNamePattern.MatchString(k) {
			pr.add(field+"."+k, "%q is not a variable name: letters, digits and '_', not starting with a digit", k)
		} else if strings.IndexByte(env[k], 0) >= 0 {
			pr.add(field+"."+k, "must not contain a NUL byte")
		}
	}
}

func validateSecrets(pr *problems, field string, names []string) {
	seen := map[string]bool{}
	for i, n := range names {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !envNamePattern.MatchString(n):
			pr.add(f, "%q is not a variable name: letters, digits and '_', not starting with a digit", n)
		case seen[n]:
			pr.add(f, "%q is listed twice", n)
		}
		seen[n] = true
	}
}

// workspacePath checks a path that must stay inside the workspace and returns it relative to
// the workspace root, slash-separated and clean.
func workspacePath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("must not be empty")
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("must not contain a NUL byte")
	}
	if path.IsAbs(p) {
		rel, ok := strings.CutPrefix(path.Clean(p), Workspace+"/")
		if !ok {
			return "", fmt.Errorf("%q is outside %s", p, Workspace)
		}
		return rel, nil
	}
	c := path.Clean(p)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%q is not a path inside the workspace", p)
	}
	return c, nil
}

func (c *Cache) validate(pr *problems, at string) {
	if len(c.Paths) == 0 {
		pr.add(at+".paths", "must list at least one path")
	}
	for i, p := range c.Paths {
		if _, err := workspacePath(p); err != nil {
			pr.add(fmt.Sprintf("%s.paths[%d]", at, i), "%v", err)
		}
	}
	for i, p := range c.KeyFiles {
		field := fmt.Sprintf("%s.key_files[%d]", at, i)
		if _, err := workspacePath(p); err != nil {
			pr.add(field, "%v", err)
		} else if _, err := path.Match(p, ""); err != nil {
			pr.add(field, "%q is not a valid pattern: %v", p, err)
		}
	}
}

func (sv *Service) validate(pr *problems, at string) {
	switch {
	case sv.Name == "":
		pr.add(at+".name", "must not be empty")
	case len(sv.Name) > maxServiceName || !serviceNamePattern.MatchString(sv.Name):
		pr.add(at+".name", "%q must be lowercase letters and digits with single '-' between them, at most %d bytes", sv.Name, maxServiceName)
	}
	if sv.Image == "" {
		pr.add(at+".image", "must not be empty")
	} else {
		checkImage(pr, at+".image", sv.Image)
	}
	checkCommand(pr, at, sv.Entrypoint, sv.Commands, sv.Args)
	validateEnv(pr, at+".env", sv.Env)
	validateSecrets(pr, at+".secrets", sv.Secrets)
	for i, port := range sv.Ports {
		if port < 1 || port > 65535 {
			pr.add(fmt.Sprintf("%s.ports[%d]", at, i), "must be 1-65535, got %d", port)
		}
	}
	if sv.ReadyTimeout < 0 {
		pr.add(at+".ready_timeout", "must be >= 0, got %s", sv.ReadyTimeout)
	}
}

func (b *Build) validate(pr *problems, at string) {
	if strings.TrimSpace(b.Ref) == "" {
		pr.add(at+".ref", "must not be empty")
	} else {
		checkImage(pr, at+".ref", b.Ref)
	}
	if len(b.Add) == 0 {
		pr.add(at+".add", "must list at least one file or directory")
	}
	for i, f := range b.Add {
		field := fmt.Sprintf("%s.add[%d]", at, i)
		if _, err := workspacePath(f.Src); err != nil {
			pr.add(field+".src", "%v", err)
		}
		if !path.IsAbs(f.Dst) || strings.IndexByte(f.Dst, 0) >= 0 {
			pr.add(field+".dst", "%q must be an absolute path in the image", f.Dst)
		}
	}
	for i, e := range b.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || !envNamePattern.MatchString(k) {
			pr.add(fmt.Sprintf("%s.env[%d]", at, i), "%q must have the form KEY=VALUE", e)
		}
	}
	if b.WorkingDir != "" && !path.IsAbs(b.WorkingDir) && !strings.Contains(b.WorkingDir, "${{") {
		pr.add(at+".working_dir", "%q must be an absolute path", b.WorkingDir)
	}
	for i, p := range b.ExposedPorts {
		field := fmt.Sprintf("%s.exposed_ports[%d]", at, i)
		if !exposedPortPattern.MatchString(p) {
			pr.add(field, "%q must be a port with an optional protocol, such as 8080 or 53/udp", p)
			continue
		}
		n, _ := strconv.Atoi(strings.SplitN(p, "/", 2)[0])
		if n < 1 || n > 65535 {
			pr.add(field, "port %d must be 1-65535", n)
		}
	}
}

// Shells a step may name; any other must have "{0}" in it.
var shells = map[string][]string{
	"bash": {"bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"},
	"sh":   {"sh", "-e", "{0}"},
}

func (s *Step) validateShell(pr *problems, at string) {
	switch {
	case s.Shell == "":
	case len(s.Commands) == 0:
		pr.add(at+".shell", "a shell runs commands (run), and the step has none")
	case shells[s.Shell] != nil:
	case !strings.Contains(s.Shell, "{0}"):
		pr.add(at+".shell", "%s must be bash, sh, or a command line with {0} for the script, such as \"python3 {0}\"", dao.Quote(s.Shell))
	case strings.IndexByte(s.Shell, 0) >= 0:
		pr.add(at+".shell", "must not contain a NUL byte")
	}
}

var artifactNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// checkArtifactName checks an artifact's name unless it holds an expression; the runner
// checks it again once rendered.
func checkArtifactName(name string) error {
	if strings.Contains(name, "${{") || artifactNamePattern.MatchString(name) {
		return nil
	}
	return fmt.Errorf("%s must be letters, digits, '.', '-' and '_', starting with a letter or digit, at most 64 bytes", dao.Quote(name))
}

func (s *Step) validateArtifacts(pr *problems, at string) {
	if u := s.Upload; u != nil {
		if u.Name == "" {
			pr.add(at+".upload.name", "must not be empty")
		} else if err := checkArtifactName(u.Name); err != nil {
			pr.add(at+".upload.name", "%v", err)
		} else if s.hasMatrix() && !strings.Contains(u.Name, "${{") && s.instanceCount() > 1 {
			pr.add(at+".upload.name", "every instance of the matrix would upload %q: give each its own name, such as %q", u.Name, u.Name+"-${{ matrix.<key> }}")
		}
		if len(u.Paths) == 0 {
			pr.add(at+".upload.paths", "must list at least one path")
		}
		for i, p := range u.Paths {
			if _, err := workspacePath(p); err != nil {
				pr.add(fmt.Sprintf("%s.upload.paths[%d]", at, i), "%v", err)
			}
		}
	}
	seen := map[string]bool{}
	for i, name := range s.Download {
		field := fmt.Sprintf("%s.download[%d]", at, i)
		switch err := checkArtifactName(name); {
		case name == "":
			pr.add(field, "must not be empty")
		case err != nil:
			pr.add(field, "%v", err)
		case seen[name]:
			pr.add(field, "%q is listed twice", name)
		}
		seen[name] = true
	}
}

func (s *Step) validateMatrix(pr *problems, at string) {
	upper := map[string]string{}
	checkKey := func(field, key string) bool {
		if !envNamePattern.MatchString(key) {
			pr.add(field, "key %q must be letters, digits and '_', not starting with a digit", key)
			return false
		}
		return true
	}
	for _, key := range slices.Sorted(maps.Keys(s.Matrix)) {
		field := at + ".matrix." + key
		if key == "include" || key == "exclude" {
			pr.add(field, "must be a list of mappings of matrix keys to values")
			continue
		}
		if checkKey(field, key) {
			if other, dup := upper[strings.ToUpper(key)]; dup {
				pr.add(field, "key %q and %q give the same variable MATRIX_%s", other, key, strings.ToUpper(key))
			}
			upper[strings.ToUpper(key)] = key
		}
		if len(s.Matrix[key]) == 0 {
			pr.add(field, "must list at least one value")
		}
	}
	for i, in := range s.MatrixInclude {
		field := fmt.Sprintf("%s.matrix.include[%d]", at, i)
		if len(in) == 0 {
			pr.add(field, "must give at least one key")
		}
		for _, key := range slices.Sorted(maps.Keys(in)) {
			if checkKey(field+"."+key, key) {
				if other, dup := upper[strings.ToUpper(key)]; dup && other != key {
					pr.add(field+"."+key, "key %q and %q give the same variable MATRIX_%s", other, key, strings.ToUpper(key))
				}
			}
		}
	}
	for i, ex := range s.MatrixExclude {
		field := fmt.Sprintf("%s.matrix.exclude[%d]", at, i)
		if len(ex) == 0 {
			pr.add(field, "must give at least one key")
		}
		for _, key := range slices.Sorted(maps.Keys(ex)) {
			if _, ok := s.Matrix[key]; !ok {
				pr.add(field+"."+key, "%q is not a key of the matrix", key)
			}
		}
	}
	if s.hasMatrix() {
		if s.instanceCount() > MaxMatrixInstances {
			pr.add(at+".matrix", "makes more than %d instances", MaxMatrixInstances)
		} else if len(s.MatrixExclude) > 0 && len(s.expand()) == 0 {
			pr.add(at+".matrix.exclude", "excludes every combination: the step would not run")
		}
	}
	if s.MaxParallel < 0 {
		pr.add(at+".max_parallel", "must be >= 0, got %d", s.MaxParallel)
	}
}

// secretRef is a secrets.<name> an expression of a step reads.
type secretRef struct {
	field, name string
	col         int
}

// secretRefs returns the secrets the expressions of the step at "at" read by name.
func (s *Step) secretRefs(at string) []secretRef {
	var out []secretRef
	add := func(field string, refs []*refExpr) {
		for _, r := range refs {
			if r.path[0] == "secrets" && len(r.path) > 1 {
				out = append(out, secretRef{field: field, name: r.path[1], col: r.pos + 1})
			}
		}
	}
	if s.If != "" {
		if x, err := parseCondition(s.If); err == nil {
			add(at+".if", refsOf(x))
		}
	}
	visitStrings(s, at, func(field, v string, _ func(string)) {
		if t, err := parseTemplate(v); err == nil {
			add(field, t.refs())
		}
	})
	return out
}

// checkDownloads refuses a download of a name that no step the step needs, directly or not,
// uploads. A name with an expression, on either side, is checked when the step runs.
func (p *Pipeline) checkDownloads(pr *problems, paths []string, index map[string]int) {
	for i := range p.Steps {
		s := &p.Steps[i]
		if len(s.Download) == 0 {
			continue
		}
		names, dynamic := map[string]bool{}, false
		seen := map[int]bool{}
		stack := []int{i}
		for len(stack) > 0 {
			j := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, n := range p.Steps[j].Needs {
				k := index[n]
				if seen[k] {
					continue
				}
				seen[k] = true
				stack = append(stack, k)
				if u := p.Steps[k].Upload; u != nil {
					names[u.Name] = true
					dynamic = dynamic || strings.Contains(u.Name, "${{")
				}
			}
		}
		for j, name := range s.Download {
			if names[name] || dynamic || strings.Contains(name, "${{") || name == "" {
				continue
			}
			known := slices.Sorted(maps.Keys(names))
			hint := "they upload none"
			if len(known) > 0 {
				hint = "they upload " + strings.Join(known, ", ")
			}
			if sg := suggest(name, known); sg != "" {
				hint += fmt.Sprintf("; did you mean %q?", sg)
			}
			pr.add(fmt.Sprintf("%s.download[%d]", paths[i], j), "no step this one needs, directly or not, uploads %q (%s)", name, hint)
		}
	}
}
