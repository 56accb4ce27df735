package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
)

// Labels the runner puts on its containers, beside edge's own.
const (
	// LabelRun holds the run's ID.
	LabelRun = dao.LabelPrefix + "pipeline.run"
	// LabelStep holds the step's name.
	LabelStep = dao.LabelPrefix + "pipeline.step"
)

// Where a container step finds what the runner gives it.
const (
	// outputMount is the directory mounted in every container step that holds the outputs
	// file ($DAO_OUTPUT).
	outputMount = "/dao"
	outputFile  = "output"
	// maxOutputBytes bounds the outputs file a step may write.
	maxOutputBytes = 1 << 20
	// cleanupTimeout bounds stopping and removing a container after its step.
	cleanupTimeout = 30 * time.Second
)

// result is how one attempt ended.
type result struct {
	status      Status
	reason      string
	exitCode    *int
	outputs     map[string]string
	containerID string
	err         error // what failed the attempt, if an error did (see StepError.Err)
}

// attempts runs do once, and again while it fails or times out and the step has retries
// left. actx is ctx with the step's timeout.
func (ru *run) attempts(ctx context.Context, n *node, step *Step, do func(ctx, actx context.Context, a *Attempt) result) {
	base := n.rec.Outputs // restored from the cache, if any
	for number := 1; ; number++ {
		a := Attempt{Number: number, StartedAt: ru.now()}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if step.Timeout > 0 {
			actx, cancel = context.WithTimeout(ctx, step.Timeout.Std())
		}
		res := do(ctx, actx, &a)
		cancel()
		if res.status != StatusSuccess && ctx.Err() != nil {
			res.status, res.reason = StatusCancelled, "run cancelled"
		}
		a.FinishedAt = ru.now()
		a.Status, a.Reason, a.ExitCode, a.ContainerID = res.status, res.reason, res.exitCode, res.containerID
		n.rec.Attempts = append(n.rec.Attempts, a)
		n.rec.Status, n.rec.Reason, n.rec.ExitCode = res.status, res.reason, res.exitCode
		n.err = res.err
		n.rec.Outputs = mergeOutputs(base, res.outputs)
		if res.status == StatusSuccess {
			ru.log(n, "attempt %d: success", number)
			return
		}
		ru.log(n, "attempt %d: %s: %s", number, res.status, res.reason)
		if res.status == StatusCancelled || number > step.Retries {
			return
		}
		ru.log(n, "retrying (%d of %d retries)", number, step.Retries)
	}
}

// mergeOutputs returns the outputs of an attempt over those of the cache, if any.
func mergeOutputs(cached, written map[string]string) map[string]string {
	if len(cached) == 0 {
		return written
	}
	out := maps.Clone(cached)
	maps.Copy(out, written)
	return out
}

// failedResult classifies an error of an attempt: cancelled with the run, timed out with the
// step, or failed.
func (ru *run) failedResult(ctx, actx context.Context, step *Step, what string, err error) result {
	switch {
	case ctx.Err() != nil:
		return result{status: StatusCancelled, reason: "run cancelled"}
	case actx.Err() != nil && errors.Is(actx.Err(), context.DeadlineExceeded):
		return result{status: StatusTimedOut, reason: fmt.Sprintf("timed out after %s", step.Timeout), err: context.DeadlineExceeded}
	}
	masked := ru.maskErr(what, err)
	return result{status: StatusFailure, reason: masked.Error(), err: masked}
}

// maskErr returns err, its text prefixed with what and with the run's secrets masked.
func (ru *run) maskErr(what string, err error) error {
	text := err.Error()
	if what != "" {
		text = what + ": " + text
	}
	return &maskedError{text: ru.masks.mask(text), err: err}
}

// runContainerStep runs a container step: its cache, its services and its attempts.
func (ru *run) runContainerStep(ctx context.Context, n *node, step *Step) {
	var (
		ws       *os.Root
		cacheKey string
	)
	if step.Cache != nil {
		var err error
		if ws, err = os.OpenRoot(ru.ws); err == nil {
			defer ws.Close()
			cacheKey, err = ru.lookupCache(n, ws, step)
		}
		if err != nil {
			n.rec.Cache = &CacheResult{Key: cacheKey, Error: ru.masks.mask(err.Error())}
			ru.log(n, "cache: %v; running without it", err)
			cacheKey = ""
		}
		if n.rec.Cache != nil && n.rec.Cache.Hit && step.Cache.SkipOnHit {
			n.rec.Status, n.rec.Reason = StatusSuccess, "cache hit: work skipped"
			ru.log(n, "cache hit %.12s: work skipped", cacheKey)
			return
		}
	}

	svcs, err := ru.startServices(ctx, n, step)
	defer ru.stopServices(ctx, n, svcs)
	if err != nil {
		masked := ru.maskErr("", err)
		res := result{status: StatusFailure, reason: masked.Error(), err: masked}
		if ctx.Err() != nil {
			res = result{status: StatusCancelled, reason: "run cancelled"}
		}
		n.rec.Status, n.rec.Reason, n.err = res.status, res.reason, res.err
		ru.log(n, "%s: %s", res.status, res.reason)
		return
	}

	ru.attempts(ctx, n, step, func(ctx, actx context.Context, a *Attempt) result {
		return ru.containerAttempt(ctx, actx, n, step, a.Number, svcs)
	})

	if cacheKey != "" && !n.rec.Cache.Hit && n.rec.Status == StatusSuccess {
		if err := ru.r.cache.save(ws, cacheKey, step.Cache.Paths, n.rec.Outputs); err != nil {
			n.rec.Cache.Error = ru.masks.mask(err.Error())
			ru.log(n, "cache: save %.12s: %v", cacheKey, err)
		} else {
			n.rec.Cache.Saved = true
			ru.log(n, "cache: saved %.12s", cacheKey)
		}
	}
}

// lookupCache computes the step's cache key and restores its entry when there is one.
func (ru *run) lookupCache(n *node, ws *os.Root, step *Step) (string, error) {
	key, err := cacheKey(ws, ru.p.Env, step, n.inst)
	if err != nil {
		return "", err
	}
	outputs, hit, err := ru.r.cache.restore(ws, key, step.Cache.Paths)
	if err != nil {
		return key, err
	}
	n.rec.Cache = &CacheResult{Key: key, Hit: hit}
	if hit {
		n.rec.Outputs = outputs
		ru.log(n, "cache hit %.12s: restored %s", key, strings.Join(step.Cache.Paths, ", "))
	} else {
		ru.log(n, "cache miss %.12s", key)
	}
	return key, nil
}

// containerAttempt runs one attempt of a container step: create and start its container,
// follow its logs, wait for it (stopping it at the timeout or on cancellation), read its
// outputs and remove it.
func (ru *run) containerAttempt(ctx, actx context.Context, n *node, step *Step, number int, svcs *services) result {
	id := fmt.Sprintf("%s-%s.a%d", ru.id, n.key, number)
	outDir := filepath.Join(ru.scratch, n.key, fmt.Sprintf("a%d", number))
	if err := makeOutputDir(outDir); err != nil {
		masked := ru.maskErr("outputs file", err)
		return result{status: StatusFailure, reason: masked.Error(), err: masked}
	}
	if step.Shell != "" {
		if err := writeScript(outDir, step); err != nil {
			masked := ru.maskErr("script file", err)
			return result{status: StatusFailure, reason: masked.Error(), err: masked}
		}
	}
	spec := ru.containerSpec(n, step, number, outDir, svcs)
	labels := map[string]string{LabelRun: ru.id, LabelStep: n.def.Name}
	// The log is opened between the container's creation and its start, so that the Runtime
	// keeps all of it for the reader (see followLogs).
	err := ru.r.rt.Create(actx, id, spec, edge.WithLabels(labels))
	var logs *logFollower
	if err == nil {
		logs = ru.openLogs(ctx, id)
		if _, err = ru.r.rt.Start(actx, id); err != nil {
			logs.close()
		}
	}
	if err != nil {
		ru.remove(ctx, n, id)
		res := ru.failedResult(ctx, actx, step, "start container", err)
		res.containerID = id
		return res
	}
	ru.log(n, "attempt %d: container %s started", number, id)
	stopFollowing := logs.follow(n)

	res := result{containerID: id}
	st, err := ru.r.rt.Wait(actx, id)
	if err != nil {
		waitErr := err
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ru.r.opts.stopGrace+cleanupTimeout)
		st, err = ru.r.rt.Stop(stopCtx, id, edge.WithGracePeriod(ru.r.opts.stopGrace))
		cancel()
		switch {
		case ctx.Err() != nil:
			res.status, res.reason = StatusCancelled, "run cancelled"
		case actx.Err() != nil:
			res.status, res.reason = StatusTimedOut, fmt.Sprintf("timed out after %s", step.Timeout)
			res.err = context.DeadlineExceeded
		default:
			res.status, res.reason = StatusFailure, "wait: "+waitErr.Error()
			res.err = waitErr
		}
		if err != nil {
			res.reason += "; stop: " + err.Error()
		} else {
			res.reason += "; container stopped, " + st.Reason()
			code := st.ExitCode
			res.exitCode = &code
		}
	} else {
		code := st.ExitCode
		res.exitCode = &code
		if code == 0 {
			res.status = StatusSuccess
		} else {
			res.status, res.reason = StatusFailure, st.Reason()
		}
	}
	ru.awaitOutput(ctx, id)
	stopFollowing()

	outputs, warnings, err := readOutputs(filepath.Join(outDir, outputFile))
	for _, w := range warnings {
		ru.log(n, "outputs: %s", w)
	}
	if err != nil && res.status == StatusSuccess {
		res.status, res.reason, res.err = StatusFailure, "outputs: "+err.Error(), err
	}
	res.outputs = outputs
	ru.remove(ctx, n, id)
	res.reason = ru.masks.mask(res.reason)
	if res.err != nil && res.err != context.DeadlineExceeded {
		res.err = &maskedError{text: res.reason, err: res.err}
	}
	return res
}

// awaitOutput waits until containerd's shim has written all the exited container's output to
// its log file. The exit is reported as soon as the process ends, while the shim may still be
// copying its last output; deleting the exited process waits for that copy (up to 2s). The
// container and its log stay. edge.Runtime has no call for this yet, so it is done with the
// Runtime's containerd client.
func (ru *run) awaitOutput(ctx context.Context, id string) {
	cctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.WithoutCancel(ctx), ru.r.rt.Namespace()), cleanupTimeout)
	defer cancel()
	c, err := ru.r.rt.Client().LoadContainer(cctx, id)
	if err != nil {
		return
	}
	if task, err := c.Task(cctx, nil); err == nil {
		_, _ = task.Delete(cctx)
	}

}

func makeOutputDir(dir string) error {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	// Steps may run as any user: let them write their outputs.
	if err := os.Chmod(dir, 0o777); err != nil {
		return err
	}
	f := filepath.Join(dir, outputFile)
	if err := os.WriteFile(f, nil, 0o666); err != nil {
		return err
	}
	return os.Chmod(f, 0o666)
}

// remove stops (if needed) and removes a container of the run, even when ctx is cancelled,
// and logs an error.
func (ru *run) remove(ctx context.Context, n *node, id string) {
	if err := ru.removeContainer(ctx, id); err != nil {
		ru.log(n, "%v", err)
	}
}

// removeContainer stops (if needed) and removes a container of the run, even when ctx is
// cancelled. A container that is not there is no error.
func (ru *run) removeContainer(ctx context.Context, id string) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	err := ru.r.rt.Remove(rctx, id)
	if errors.Is(err, edge.ErrRunning) {
		if _, err = ru.r.rt.Stop(rctx, id, edge.WithGracePeriod(ru.r.opts.stopGrace)); err == nil {
			err = ru.r.rt.Remove(rctx, id)
		}
	}
	if err != nil && !errors.Is(err, edge.ErrNotFound) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}

// containerSpec is the container of a step's attempt.
func (ru *run) containerSpec(n *node, step *Step, number int, outDir string, svcs *services) dao.ContainerSpec {
	env := map[string]string{}
	maps.Copy(env, ru.p.Env)
	maps.Copy(env, step.Env)
	for k, v := range n.inst.values {
		env["MATRIX_"+strings.ToUpper(k)] = v
	}
	for _, s := range step.Secrets {
		env[s] = ru.secrets[s]
	}
	if svcs != nil {
		maps.Copy(env, svcs.env)
	}
	maps.Copy(env, map[string]string{
		"CI":            "true",
		"DAO_WORKSPACE": Workspace,
		"DAO_OUTPUT":    path.Join(outputMount, outputFile),
		// What a script written for GitHub Actions writes to and reads.
		"GITHUB_OUTPUT":    path.Join(outputMount, outputFile),
		"GITHUB_WORKSPACE": Workspace,
		"DAO_RUN_ID":       ru.id,
		"DAO_STEP":         n.def.Name,
		"DAO_ATTEMPT":      fmt.Sprint(number),
	})
	wd := step.WorkingDir
	switch {
	case wd == "":
		wd = Workspace
	case !path.IsAbs(wd):
		wd = path.Join(Workspace, wd)
	}
	spec := dao.ContainerSpec{
		Image:      step.Image,
		Env:        envList(env),
		WorkingDir: wd,
		User:       step.User,
		Mounts: []dao.Mount{
			{Type: dao.MountBind, Source: ru.ws, Target: Workspace},
			{Type: dao.MountBind, Source: outDir, Target: outputMount},
		},
		StopGracePeriod: dao.Duration(ru.r.opts.stopGrace),
	}
	if svcs != nil && svcs.hosts != "" {
		spec.Mounts = append(spec.Mounts, dao.Mount{Type: dao.MountBind, Source: svcs.hosts, Target: "/etc/hosts", ReadOnly: true})
	}
	spec.Command, spec.Args = command(step.Entrypoint, step.Commands, step.Args)
	if step.Shell != "" {
		spec.Command, spec.Args = shellCommand(step.Shell, path.Join(outputMount, scriptFile)), nil
	}
	return spec
}

// scriptFile is the file, beside the outputs file, that holds the script of a step with a
// Shell.
const scriptFile = "script"

// writeScript writes the script of a step with a Shell into its attempt's directory: its
// commands, one a line.
func writeScript(dir string, step *Step) error {
	f := filepath.Join(dir, scriptFile)
	if err := os.WriteFile(f, []byte(strings.Join(step.Commands, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return os.Chmod(f, 0o755)
}

// shellCommand is the command line of a step with a Shell, as GitHub Actions makes it: the
// shell's template with {0} replaced by the script's path, run with its stderr sent to its
// stdout (see command).
func shellCommand(shell, script string) []string {
	words := shells[shell]
	if words == nil {
		words = strings.Fields(shell)
	}
	cmd := []string{"/bin/sh", "-c", "exec 2>&1; exec \"$@\"", "sh"}
	for _, w := range words {
		cmd = append(cmd, strings.ReplaceAll(w, "{0}", script))
	}
	return cmd
}

// command turns a step's or service's entrypoint, commands and args into a container's
// command and args.
//
// Commands send their stderr to stdout: then the log keeps the order in which lines were
// written, and none is lost. (containerd's shim writes both streams to one log file and
// closes it when stdout ends, dropping stderr that was not copied yet: "error copying
// stderr" in its log.)
func command(entrypoint, commands, args []string) ([]string, []string) {
	if len(commands) > 0 {
		return []string{"/bin/sh", "-c", "exec 2>&1\nset -e\n" + strings.Join(commands, "\n") + "\n"}, nil
	}
	return slices.Clone(entrypoint), slices.Clone(args)
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// A logFollower streams a container's output into a node's log as it is written.
//
// One reader reads the log from its first byte to its last, so that every line is read once
// and in order, however much the container writes: the Runtime's log rotation does not cut
// what an open reader has still to read, and the reader is opened before the container
// starts. A reader that falls behind costs the Runtime disk space, not this process memory.
// When the log cannot be opened (containerd restarts), opening is tried again while the
// container runs, and once more at the end.
type logFollower struct {
	ru  *run
	id  string
	ctx context.Context // the reader's: cancelled, it reads on to the end of what was written
	// cancel cancels ctx.
	cancel context.CancelFunc
	log    io.ReadCloser // nil while the log could not be opened
}

// openLogs opens the log of container id, created and not started yet, for following.
func (ru *run) openLogs(ctx context.Context, id string) *logFollower {
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f := &logFollower{ru: ru, id: id, ctx: fctx, cancel: cancel}
	f.log, _ = ru.r.rt.Logs(fctx, id, edge.LogOptions{Follow: true})
	return f
}

// close closes the follower that was never followed.
func (f *logFollower) close() {
	f.cancel()
	if f.log != nil {
		f.log.Close()
	}
}

// follow streams the container's output into n's log, and returns a function that, once the
// container has exited and its output is all in its log (awaitOutput), reads what is left and
// stops.
func (f *logFollower) follow(n *node) (stop func()) {
	ru := f.ru
	lw := &lineWriter{emit: func(text string, cut bool) { ru.emitLine(n, text, cut) }}
	m := newMasker(lw, ru.masks)
	var opened bool // set before done
	done := make(chan error, 1)
	go func() {
		for f.log == nil {
			var err error
			if f.log, err = ru.r.rt.Logs(f.ctx, f.id, edge.LogOptions{Follow: true}); err != nil {
				if errors.Is(err, edge.ErrNotFound) {
					done <- err
					return
				}
				select { // containerd may be restarting: try again
				case <-f.ctx.Done():
					done <- err
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
		opened = true
		_, err := io.Copy(m, f.log)
		done <- err
	}()
	return func() {
		// The follower polls while the container runs. Once it is cancelled, it reads on to
		// the end of what was written, and stops there: quicker than waiting for it to see
		// the exit.
		f.cancel()
		err := <-done
		if opened {
			// The follower may have seen the container stopped before the shim's logger had
			// copied its last output. awaitOutput has waited for that copy: read what it
			// added. The reader's ctx is cancelled, so this reads to the end and stops.
			if err == nil {
				_, err = io.Copy(m, f.log)
			}
			f.log.Close()
		} else {
			// The log could not be opened while the container ran: read it all now.
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(f.ctx), cleanupTimeout)
			var rc io.ReadCloser
			if rc, err = ru.r.rt.Logs(rctx, f.id, edge.LogOptions{}); err == nil {
				_, err = io.Copy(m, rc)
				rc.Close()
			}
			rcancel()
		}
		if err != nil {
			ru.log(n, "logs: %v; the log may lack lines", err)
		}
		_ = m.Flush()
		lw.Flush()
	}
}

// readOutputs reads a step's outputs file: "key=value" lines, and "key<<END" followed by
// lines up to a line "END" for values of several lines (as GitHub Actions' $GITHUB_OUTPUT).
// Lines it cannot read are reported as warnings, not errors.
func readOutputs(file string) (map[string]string, []string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxOutputBytes+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > maxOutputBytes {
		return nil, nil, fmt.Errorf("the outputs file is larger than %d bytes", maxOutputBytes)
	}
	return parseOutputs(data)
}

func parseOutputs(data []byte) (map[string]string, []string, error) {
	var (
		out      map[string]string
		warnings []string
	)
	set := func(k, v string) {
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), maxOutputBytes+1)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		eq := strings.IndexByte(text, '=')
		heredoc := strings.Index(text, "<<")
		if heredoc > 0 && (eq < 0 || heredoc < eq) {
			key, delim := text[:heredoc], text[heredoc+2:]
			if !keyPattern.MatchString(key) || delim == "" {
				warnings = append(warnings, fmt.Sprintf("line %d: %q is not key<<DELIMITER", line, text))
				continue
			}
			start := line
			var lines []string
			closed := false
			for sc.Scan() {
				line++
				l := strings.TrimSuffix(sc.Text(), "\r")
				if l == delim {
					closed = true
					break
				}
				lines = append(lines, l)
			}
			if !closed {
				warnings = append(warnings, fmt.Sprintf("line %d: %q is never closed by a line %q", start, key, delim))
				break
			}
			set(key, strings.Join(lines, "\n"))
			continue
		}
		if eq <= 0 || !keyPattern.MatchString(text[:eq]) {
			warnings = append(warnings, fmt.Sprintf("line %d: want key=value with a key of letters, digits, '_' and '-'", line))
			continue
		}
		set(text[:eq], text[eq+1:])
	}
	return out, warnings, sc.Err()
}

// buildAttempt builds the step's image from the workspace and pushes it.
func (ru *run) buildAttempt(ctx, actx context.Context, n *node, step *Step) result {
	b := step.Build
	img, err := buildImage(actx, ru.ws, b)
	if err != nil {
		return ru.failedResult(ctx, actx, step, "build", err)
	}
	defer func() {
		if err := closeAll(img.Layers()); err != nil {
			ru.log(n, "close layers: %v", err)
		}
	}()
	ru.log(n, "built %s: manifest %s, %d bytes of layers", b.Ref, img.Descriptor().Digest, img.Manifest().Layers[0].Size)
	desc, err := ru.r.pusher.Push(actx, b.Ref, img)
	if err != nil {
		return ru.failedResult(ctx, actx, step, "push "+b.Ref, err)
	}
	dg := desc.Digest
	if dg == "" {
		dg = img.Descriptor().Digest
	}
	pinned, err := pinnedRef(b.Ref, dg)
	if err != nil {
		return ru.failedResult(ctx, actx, step, "push "+b.Ref, err)
	}
	ru.log(n, "pushed %s", pinned)
	return result{
		status:  StatusSuccess,
		outputs: map[string]string{"ref": b.Ref, "digest": dg.String(), "image": pinned},
	}
}

// deployAttempt hands the step's image to the Deployer.
func (ru *run) deployAttempt(ctx, actx context.Context, n *node, step *Step) result {
	d := step.Deploy
	ru.log(n, "deploying %s to service %s", d.Image, d.Service)
	if err := ru.r.opts.deployer.Deploy(actx, d.Service, d.Image); err != nil {
		return ru.failedResult(ctx, actx, step, "deploy "+d.Service, err)
	}
	ru.log(n, "deployed %s to service %s", d.Image, d.Service)
	return result{status: StatusSuccess, outputs: map[string]string{"service": d.Service, "image": d.Image}}
}
