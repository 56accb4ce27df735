package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/opendao/dao/edge"
)

// Runner runs pipelines: each container step in containers on an edge.Runtime, build steps
// with package registry and a Pusher, deploy steps through a Deployer.
//
// A Runner is safe for simultaneous use: several runs may go on at once, and share its
// parallelism limit, its cache and its Runtime.
type Runner struct {
	rt     *edge.Runtime
	opts   options
	slots  chan struct{}
	cache  *cacheStore
	pusher Pusher
}

// NewRunner returns a Runner that runs containers on rt. The Runner does not own rt: close
// rt after the last run has returned.
func NewRunner(rt *edge.Runtime, opts ...Option) (*Runner, error) {
	if rt == nil {
		return nil, fmt.Errorf("%w: NewRunner: the Runtime must not be nil", ErrInvalidOption)
	}
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	r := &Runner{
		rt:     rt,
		opts:   o,
		slots:  make(chan struct{}, o.parallelism),
		cache:  &cacheStore{dir: o.cacheDir},
		pusher: o.pusher,
	}
	if r.pusher == nil {
		r.pusher = &ContainerdPusher{Client: rt.Client(), Namespace: rt.Namespace()}
	}
	return r, nil
}

// Run runs the pipeline and returns its record once every step has finished and every
// container of the run is removed: no goroutine of the run (its steps, the followers of its
// containers' logs) and none of its containers (steps' and services') outlives Run. A Runner
// starts nothing of its own, so it has no Close.
//
// Steps start as soon as the steps they need have finished and their condition holds, at
// most the Runner's parallelism at once. When ctx is cancelled, the run starts nothing more,
// stops the containers that run (SIGTERM, then SIGKILL after the stop grace), removes them and
// returns; the steps that did not finish are StatusCancelled.
//
// The error is nil when the run succeeded. An invalid pipeline, or one that needs a secret or
// a Deployer the run was not given, returns a *dao.ValidationError and no record: nothing
// ran. A run with failed steps returns its record and a *RunError (errors.Is(err,
// ErrFailed)) that lists a *StepError per failed step, through which errors.Is and errors.As
// reach what failed each; a cancelled run returns its record and an error that wraps ctx's
// error.
func (r *Runner) Run(ctx context.Context, p *Pipeline, opts ...RunOption) (*Record, error) {
	var o runOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if p == nil {
		return nil, fmt.Errorf("%w: Run: the Pipeline must not be nil", ErrInvalidOption)
	}
	if err := r.check(p, &o); err != nil {
		return nil, err
	}
	ru, err := r.newRun(p, &o)
	if err != nil {
		return nil, err
	}
	defer ru.cleanup()
	ru.execute(ctx)
	rec := ru.record()
	return rec, ru.result(ctx, rec)
}

// check validates p and what the run needs of the Runner and the run's options.
func (r *Runner) check(p *Pipeline, o *runOptions) error {
	var pr problems
	p.validate(&pr)
	paths := stepPaths(p.Steps)
	for i := range p.Steps {
		s := &p.Steps[i]
		at := paths[i]
		missing := func(field string, names []string) {
			for j, name := range names {
				if _, ok := o.secrets[name]; !ok && envNamePattern.MatchString(name) {
					pr.add(fmt.Sprintf("%s[%d]", field, j), "secret %q was not given to the run (WithSecrets)", name)
				}
			}
		}
		missing(at+".secrets", s.Secrets)
		for k, sat := range servicePaths(at, s.Services) {
			missing(sat+".secrets", s.Services[k].Secrets)
		}
		for _, ref := range s.secretRefs(at) {
			if _, ok := o.secrets[ref.name]; !ok {
				pr.add(ref.field, "column %d: secret %q was not given to the run (WithSecrets)", ref.col, ref.name)
			}
		}
		if s.Deploy != nil && r.opts.deployer == nil {
			pr.add(at+".deploy", "the Runner has no Deployer (WithDeployer)")
		}
	}
	return pr.err()
}

// run is one run of a pipeline.
type run struct {
	r       *Runner
	p       *Pipeline
	id      string
	ws      string // the workspace on the host
	ownWS   bool
	scratch string
	secrets map[string]string
	masks   secretSet
	logf    func(LogLine)
	logMu   sync.Mutex

	nodes  []*node
	groups map[string][]*node
	ctl    map[string]*groupControl // by step, for matrix steps with FailFast or MaxParallel

	artMu     sync.Mutex
	artifacts map[string]*artifactEntry // by name
	artDir    string                    // where artifacts are kept
	index     map[string]int            // steps by name

	upMu sync.Mutex
	up   map[string]upstream // by step, once the steps it needs have finished

	startedAt, finishedAt time.Time
}

// node is one step, or one instance of a matrix step, in a run.
type node struct {
	def  *Step
	inst instance
	name string // record name: "test" or "test (go=1.26)"
	// key names the node in container IDs and paths: "test" or "test.m1". Step names have no
	// '.', so the IDs of a run never clash: "<run>-<key>.a<attempt>" for a step's attempts,
	// "<run>-<key>.svc.<service>" for its services.
	key  string
	rec  StepRecord
	err  error // what failed the node, if an error did (see StepError.Err)
	done chan struct{}
	logs []string // guarded by run.logMu
	// failFast is set when the node was cancelled because another instance of its step
	// failed (Step.FailFast): it does not make the run cancelled.
	failFast bool
}

// groupControl is what the instances of a matrix step share: the context that FailFast
// cancels, and the slots of MaxParallel.
type groupControl struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	slots  chan struct{} // nil: no limit
}

// errFailFast is the cause with which a FailFast step cancels its other instances.
type errFailFast struct{ failed string }

func (e errFailFast) Error() string {
	return fmt.Sprintf("cancelled by fail_fast: instance %s failed", e.failed)
}

func (r *Runner) newRun(p *Pipeline, o *runOptions) (*run, error) {
	id := o.runID
	if id == "" {
		var b [5]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	scratch, err := os.MkdirTemp(r.opts.scratchDir, "dao-pipeline-"+id+"-")
	if err != nil {
		return nil, fmt.Errorf("pipeline: scratch directory: %w", err)
	}
	ru := &run{
		r:       r,
		p:       &Pipeline{Name: p.Name, Env: maps.Clone(p.Env)},
		id:      id,
		ws:      o.workspace,
		scratch: scratch,
		secrets: o.secrets,
		logf:    o.logf,
		groups:  map[string][]*node{},
		ctl:     map[string]*groupControl{},
		artDir:  o.artifactDir,
	}
	ru.masks = runSecretSet(o.secrets)
	if ru.artDir == "" {
		ru.artDir = filepath.Join(scratch, "artifacts")
	}
	if ru.ws == "" {
		ru.ws, ru.ownWS = filepath.Join(scratch, "workspace"), true
		if err := os.Mkdir(ru.ws, 0o777); err != nil {
			os.RemoveAll(scratch)
			return nil, fmt.Errorf("pipeline: workspace: %w", err)
		}
		_ = os.Chmod(ru.ws, 0o777) // steps that run as another user write there too
	} else if info, err := os.Stat(ru.ws); err != nil || !info.IsDir() {
		os.RemoveAll(scratch)
		return nil, fmt.Errorf("pipeline: workspace %s: not a directory", ru.ws)
	}
	ru.index = make(map[string]int, len(p.Steps))
	ru.up = make(map[string]upstream, len(p.Steps))
	for i := range p.Steps {
		ru.p.Steps = append(ru.p.Steps, *p.Steps[i].clone())
		ru.index[p.Steps[i].Name] = i
	}
	for i := range ru.p.Steps {
		s := &ru.p.Steps[i]
		insts := s.expand()
		for j, inst := range insts {
			n := &node{def: s, inst: inst, name: s.Name, key: s.Name, done: make(chan struct{})}
			if s.hasMatrix() {
				n.name = fmt.Sprintf("%s (%s)", s.Name, inst.label)
				n.key = fmt.Sprintf("%s.m%d", s.Name, j)
			}
			n.rec = StepRecord{Name: n.name, Step: s.Name, Matrix: inst.values}
			ru.nodes = append(ru.nodes, n)
			ru.groups[s.Name] = append(ru.groups[s.Name], n)
		}
	}
	return ru, nil
}

func (ru *run) cleanup() {
	if err := os.RemoveAll(ru.scratch); err != nil {
		// Files a step made read-only, or owned by another user: try once more after making
		// them writable.
		_ = filepath.Walk(ru.scratch, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.IsDir() {
				_ = os.Chmod(p, 0o700)
			}
			return nil
		})
		_ = os.RemoveAll(ru.scratch)
	}
}

// runSecretSet is the secrets to mask in a run: their values, and their values as toJSON
// writes them (escaped), so that ${{ toJSON(secrets) }} shows none of them.
func runSecretSet(secrets map[string]string) secretSet {
	values := slices.Collect(maps.Values(secrets))
	for _, v := range slices.Collect(maps.Values(secrets)) {
		if e := jsonEscaped(v); e != v {
			values = append(values, e)
		}
	}
	return newSecretSet(values)
}

// execute runs every node, each in its own goroutine, and returns when all have finished.
func (ru *run) execute(ctx context.Context) {
	ru.startedAt = ru.now()
	for i := range ru.p.Steps {
		s := &ru.p.Steps[i]
		if !s.hasMatrix() || !s.FailFast && s.MaxParallel == 0 {
			continue
		}
		g := &groupControl{}
		g.ctx, g.cancel = context.WithCancelCause(ctx)
		defer g.cancel(nil)
		if s.MaxParallel > 0 {
			g.slots = make(chan struct{}, s.MaxParallel)
		}
		ru.ctl[s.Name] = g
	}
	var wg sync.WaitGroup
	for _, n := range ru.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(n.done)
			ru.runNode(ctx, n)
		}()
	}
	wg.Wait()
	ru.finishedAt = ru.now()
}

func (ru *run) now() time.Time { return ru.r.opts.now() }

// log adds a message of the runner to the node's log, with secrets masked.
func (ru *run) log(n *node, format string, args ...any) {
	ru.emit(n, LogLine{Runner: true, Text: ru.masks.mask(fmt.Sprintf(format, args...))})
}

// emitLine adds a line of the node's container output, masked as it was read.
func (ru *run) emitLine(n *node, text string, cut bool) {
	ru.emit(n, LogLine{Text: text, Cut: cut})
}

// emit adds a line to the node's log, with its time and step, and hands it to the live log
// function.
func (ru *run) emit(n *node, line LogLine) {
	line.Time, line.Step = ru.now(), n.name
	ru.logMu.Lock()
	defer ru.logMu.Unlock()
	n.logs = append(n.logs, line.String())
	if limit := ru.r.opts.logLimit; len(n.logs) > limit {
		n.logs = n.logs[len(n.logs)-limit:]
	}
	if ru.logf != nil {
		ru.logf(line)
	}
}

// runNode waits for the node's needs, decides whether it runs, and runs it.
func (ru *run) runNode(runCtx context.Context, n *node) {
	for _, need := range n.def.Needs {
		for _, m := range ru.groups[need] {
			<-m.done
		}
	}
	ctx := runCtx
	g := ru.ctl[n.def.Name]
	if g != nil {
		ctx = g.ctx
		defer func() {
			switch {
			case runCtx.Err() == nil && ctx.Err() != nil && n.rec.Status == StatusCancelled:
				// Another instance failed first: this one is cancelled by it, not by the run.
				n.failFast = true
				n.rec.Reason = context.Cause(ctx).Error()
			case n.def.FailFast && n.rec.Status.failed() && !n.def.ContinueOnError:
				g.cancel(errFailFast{failed: n.name})
			}
		}()
	}
	if ctx.Err() != nil {
		ru.finish(n, StatusCancelled, "run cancelled before the step started")
		return
	}
	sc := &nodeScope{ru: ru, n: n, ctx: runCtx}
	if ok, reason := ru.shouldRun(n, sc); !ok {
		ru.finish(n, StatusSkipped, reason)
		return
	}
	if g != nil && g.slots != nil {
		select {
		case g.slots <- struct{}{}:
		case <-ctx.Done():
			ru.finish(n, StatusCancelled, "run cancelled before the step started")
			return
		}
		defer func() { <-g.slots }()
	}
	select {
	case ru.r.slots <- struct{}{}:
	case <-ctx.Done():
		ru.finish(n, StatusCancelled, "run cancelled before the step started")
		return
	}
	defer func() { <-ru.r.slots }()
	n.rec.StartedAt = ru.now()
	defer func() { n.rec.FinishedAt = ru.now() }()
	step, err := n.def.render(sc)
	if err != nil {
		n.err = ru.maskErr("", err)
		ru.finish(n, StatusFailure, err.Error())
		return
	}
	if err := ru.download(n, step); err != nil {
		n.err = ru.maskErr("", err)
		ru.finish(n, StatusFailure, n.err.Error())
		return
	}
	switch step.kind() {
	case kindBuild:
		ru.attempts(ctx, n, step, func(ctx, actx context.Context, a *Attempt) result {
			return ru.buildAttempt(ctx, actx, n, step)
		})
	case kindDeploy:
		ru.attempts(ctx, n, step, func(ctx, actx context.Context, a *Attempt) result {
			return ru.deployAttempt(ctx, actx, n, step)
		})
	default:
		ru.runContainerStep(ctx, n, step)
	}
	if n.rec.Status == StatusSuccess && step.Upload != nil {
		if err := ru.upload(n, step); err != nil {
			n.err = ru.maskErr("", err)
			n.rec.Status, n.rec.Reason = StatusFailure, n.err.Error()
			ru.log(n, "%s: %s", n.rec.Status, n.rec.Reason)
		}
	}
	if n.rec.Status.failed() && step.ContinueOnError {
		n.rec.ContinueOnError = true
		ru.log(n, "%s, and the step may fail (continue_on_error)", n.rec.Status)
	}
}

// finish ends a node that did not run.
func (ru *run) finish(n *node, st Status, reason string) {
	n.rec.Status, n.rec.Reason = st, reason
	ru.log(n, "%s: %s", st, reason)
}

// shouldRun evaluates the node's condition once its needs have finished.
func (ru *run) shouldRun(n *node, sc *nodeScope) (bool, string) {
	if n.def.If == "" {
		if sc.success() {
			return true, ""
		}
		return false, ru.whyNotSuccess(n)
	}
	x, err := parseCondition(n.def.If)
	if err != nil { // Validate refused it already
		return false, fmt.Sprintf("condition %q: %v", n.def.If, err)
	}
	if !usesStatusFunction(x) {
		// As in GitHub Actions, a condition that says nothing of the needs' status holds only
		// when they succeeded.
		if !sc.success() {
			return false, ru.whyNotSuccess(n)
		}
	}
	v, err := x.eval(sc)
	if err != nil {
		return false, fmt.Sprintf("condition %q: %v", n.def.If, err)
	}
	if !v.truth() {
		return false, fmt.Sprintf("condition %q is false", n.def.If)
	}
	return true, ""
}

// whyNotSuccess names the nearest step this node needs, directly or not, that did not
// succeed: a step it needs directly first.
func (ru *run) whyNotSuccess(n *node) string {
	if name := ru.upstream(n.def.Name).culprit; name != "" {
		what := map[Status]string{
			StatusFailure: "failed", StatusTimedOut: "timed out",
			StatusSkipped: "was skipped", StatusCancelled: "was cancelled",
		}[ru.groupStatus(name)]
		return fmt.Sprintf("needed step %q %s", name, what)
	}
	return "needed steps did not succeed"
}

// upstream is what the conditions of a step see of the steps it needs, directly or not.
type upstream struct {
	ok      bool   // all of them count as a success (ok)
	bad     bool   // one of them fails the run (bad)
	culprit string // the nearest that does not count as a success, or ""
}

// upstream returns what the conditions of step see of the steps it needs, directly or not,
// once those have finished. It is worked out once per step from its needs' own, so that a run
// of any DAG takes O(steps + needs) for it.
func (ru *run) upstream(step string) upstream {
	ru.upMu.Lock()
	defer ru.upMu.Unlock()
	return ru.upstreamLocked(step)
}

func (ru *run) upstreamLocked(step string) upstream {
	if u, ok := ru.up[step]; ok {
		return u
	}
	u := upstream{ok: true}
	needs := ru.p.Steps[ru.index[step]].Needs
	for _, need := range needs {
		if !ru.groupOK(need) {
			u.ok = false
			if u.culprit == "" {
				u.culprit = need
			}
		}
		if ru.groupBad(need) {
			u.bad = true
		}
	}
	for _, need := range needs {
		nu := ru.upstreamLocked(need)
		u.ok = u.ok && nu.ok
		u.bad = u.bad || nu.bad
		if u.culprit == "" {
			u.culprit = nu.culprit
		}
	}
	ru.up[step] = u
	return u
}

// ok reports whether a finished node counts as a success for the steps that need it.
func (n *node) ok() bool {
	return n.rec.Status == StatusSuccess || n.rec.Status.failed() && n.rec.ContinueOnError
}

// bad reports whether a finished node fails the run.
func (n *node) bad() bool {
	return n.rec.Status.failed() && !n.rec.ContinueOnError || n.rec.Status == StatusCancelled
}

// groupOK: every instance of the step succeeded or was skipped, and at least one succeeded.
func (ru *run) groupOK(name string) bool {
	some := false
	for _, m := range ru.groups[name] {
		switch {
		case m.ok():
			some = true
		case m.rec.Status != StatusSkipped:
			return false
		}
	}
	return some
}

func (ru *run) groupBad(name string) bool {
	for _, m := range ru.groups[name] {
		if m.bad() {
			return true
		}
	}
	return false
}

// statusRank orders statuses from the best to the worst.
var statusRank = map[Status]int{StatusSkipped: 0, StatusSuccess: 1, StatusTimedOut: 2, StatusFailure: 3, StatusCancelled: 4}

// groupStatus is the status of a step over its instances: the worst of them.
func (ru *run) groupStatus(name string) Status {
	rank := statusRank
	var worst Status
	for i, m := range ru.groups[name] {
		if i == 0 || rank[m.rec.Status] > rank[worst] {
			worst = m.rec.Status
		}
	}
	return worst
}

// nodeScope is what a node's expressions read. Only steps the node needs, directly or not,
// are read, and they have all finished.
type nodeScope struct {
	ru  *run
	n   *node
	ctx context.Context
}

func (s *nodeScope) stepState(step string) (stepState, bool) {
	group, ok := s.ru.groups[step]
	if !ok {
		return stepState{}, false
	}
	st := stepState{status: s.ru.groupStatus(step), outputs: map[string]string{}}
	for _, m := range group {
		maps.Copy(st.outputs, m.rec.Outputs) // a later instance's value wins
	}
	st.outcome, st.conclusion = outcomeOf(st.status), outcomeOf(st.status)
	if st.outcome == "failure" && !s.ru.groupBad(step) {
		st.conclusion = "success" // continue_on_error
	}
	return st, true
}

func (s *nodeScope) matrixValues() map[string]string { return s.n.inst.values }
func (s *nodeScope) secretValues() map[string]string { return s.ru.secrets }
func (s *nodeScope) cancelled() bool                 { return s.ctx.Err() != nil }

// envValues is the pipeline's env with the step's own over it, as written.
func (s *nodeScope) envValues() map[string]string {
	env := maps.Clone(s.ru.p.Env)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, s.n.def.Env)
	return env
}

func (s *nodeScope) hashFiles(patterns []string) (string, error) {
	return hashFiles(s.ru.ws, patterns)
}

func (s *nodeScope) success() bool { return s.ru.upstream(s.n.def.Name).ok }
func (s *nodeScope) failure() bool { return s.ru.upstream(s.n.def.Name).bad }

// record assembles the run record, with every secret masked.
func (ru *run) record() *Record {
	rec := &Record{
		Pipeline:   ru.p.Name,
		RunID:      ru.id,
		Status:     StatusSuccess,
		StartedAt:  ru.startedAt,
		FinishedAt: ru.finishedAt,
	}
	ru.logMu.Lock()
	defer ru.logMu.Unlock()
	for _, n := range ru.nodes {
		sr := n.rec
		sr.Logs = slices.Clone(n.logs)
		sr.Reason = ru.masks.mask(sr.Reason)
		if sr.Artifact != nil {
			a := *sr.Artifact
			a.Paths = slices.Clone(a.Paths)
			sr.Artifact = &a
		}
		sr.Attempts = slices.Clone(sr.Attempts)
		for i := range sr.Attempts {
			sr.Attempts[i].Reason = ru.masks.mask(sr.Attempts[i].Reason)
		}
		if sr.Outputs != nil {
			out := make(map[string]string, len(sr.Outputs))
			for k, v := range sr.Outputs {
				out[k] = ru.masks.mask(v)
			}
			sr.Outputs = out
		}
		switch {
		case sr.Status == StatusCancelled && !n.failFast:
			rec.Status = StatusCancelled
		case n.bad() && rec.Status != StatusCancelled:
			rec.Status = StatusFailure
		}
		rec.Steps = append(rec.Steps, sr)
	}
	return rec
}

// result is Run's error for rec.
func (ru *run) result(ctx context.Context, rec *Record) error {
	switch rec.Status {
	case StatusSuccess:
		return nil
	case StatusCancelled:
		cause := context.Cause(ctx)
		if cause == nil {
			cause = context.Canceled
		}
		return fmt.Errorf("pipeline: run %s cancelled: %w", ru.id, cause)
	}
	re := &RunError{RunID: ru.id}
	for i, s := range rec.Steps {
		if s.Status.failed() && !s.ContinueOnError {
			re.Steps = append(re.Steps, &StepError{Step: s.Name, Status: s.Status, Reason: s.Reason,
				ExitCode: s.ExitCode, Err: ru.nodes[i].err})
		}
	}
	return re
}
