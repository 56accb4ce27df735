package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/internal/testutil/edgetest"
	"github.com/opendao/dao/pipeline"
)

// env is one test's private containerd, Runtime and busybox image.
type env struct {
	t       *testing.T
	ctrd    *testutil.Containerd
	rt      *edge.Runtime
	busybox string
	ctx     context.Context
}

func newEnv(t *testing.T, opts ...edge.Option) *env {
	t.Helper()
	c := testutil.StartContainerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	e := &env{t: t, ctrd: c, ctx: ctx, busybox: testutil.BusyboxImage(t, c)}
	e.rt = edgetest.NewRuntime(t, c, opts...)
	return e
}

// runner returns a Runner with a cache of the test's own and a short stop grace.
func (e *env) runner(opts ...pipeline.Option) *pipeline.Runner {
	e.t.Helper()
	opts = append([]pipeline.Option{
		pipeline.WithCacheDir(filepath.Join(e.t.TempDir(), "cache")),
		pipeline.WithStopGrace(300 * time.Millisecond),
	}, opts...)
	r, err := pipeline.NewRunner(e.rt, opts...)
	if err != nil {
		e.t.Fatalf("NewRunner: %v", err)
	}
	return r
}

// noContainersLeft checks that the run removed every container it made.
func (e *env) noContainersLeft() {
	e.t.Helper()
	cs, err := e.rt.List(e.ctx)
	if err != nil {
		e.t.Fatalf("List: %v", err)
	}
	if len(cs) > 0 {
		var ids []string
		for _, c := range cs {
			ids = append(ids, c.ID+" "+string(c.State))
		}
		e.t.Errorf("containers left after the run: %v", ids)
	}
}

// sh is a busybox step running commands.
func (e *env) sh(name string, needs []string, commands ...string) pipeline.Step {
	return pipeline.Step{Name: name, Image: e.busybox, Needs: needs, Commands: commands}
}

func step(t *testing.T, rec *pipeline.Record, name string) *pipeline.StepRecord {
	t.Helper()
	s := rec.Step(name)
	if s == nil {
		t.Fatalf("no step %q in the record", name)
	}
	return s
}

func wantStatus(t *testing.T, rec *pipeline.Record, name string, want pipeline.Status) *pipeline.StepRecord {
	t.Helper()
	s := step(t, rec, name)
	if s.Status != want {
		t.Errorf("step %s: status %s (%s), want %s; logs:\n%s", name, s.Status, s.Reason, want, strings.Join(s.Logs, "\n"))
	}
	return s
}

func joinLogs(s *pipeline.StepRecord) string { return strings.Join(s.Logs, "\n") }

func TestParallelBranchesTakeTheCriticalPath(t *testing.T) {
	e := newEnv(t)
	// a -> b1 -> c1 -> d and a -> b2 -> c2 -> d: the branches run side by side.
	p := &pipeline.Pipeline{Name: "dag", Steps: []pipeline.Step{
		e.sh("a", nil, "sleep 0.2"),
		e.sh("b1", []string{"a"}, "sleep 1"),
		e.sh("b2", []string{"a"}, "sleep 1"),
		e.sh("c1", []string{"b1"}, "sleep 1"),
		e.sh("c2", []string{"b2"}, "sleep 1"),
		e.sh("d", []string{"c1", "c2"}, "sleep 0.2"),
	}}
	begin := time.Now()
	rec, err := e.runner().Run(e.ctx, p)
	wall := time.Since(begin)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	const critical = 2400 * time.Millisecond // 0.2 + 1 + 1 + 0.2
	const sum = 4400 * time.Millisecond
	t.Logf("wall %s, critical path of the commands %s, their sum %s", wall.Round(time.Millisecond), critical, sum)
	if wall > critical+2*time.Second {
		t.Errorf("wall time %s, want about the critical path %s (at most 2s of overhead for its 4 steps)", wall, critical)
	}
	var stepSum time.Duration
	for _, s := range rec.Steps {
		stepSum += s.FinishedAt.Sub(s.StartedAt)
		if s.Status != pipeline.StatusSuccess {
			t.Errorf("step %s: %s (%s)", s.Name, s.Status, s.Reason)
		}
	}
	if wall > stepSum*3/4 {
		t.Errorf("wall time %s, want well under the sum of the steps' times %s", wall, stepSum)
	}
	// Every step started after the steps it needs finished, and the branches overlapped.
	for _, s := range p.Steps {
		for _, need := range s.Needs {
			if step(t, rec, s.Name).StartedAt.Before(step(t, rec, need).FinishedAt) {
				t.Errorf("%s started before %s, which it needs, finished", s.Name, need)
			}
		}
	}
	b1, b2 := step(t, rec, "b1"), step(t, rec, "b2")
	if !b2.StartedAt.Before(b1.FinishedAt) || !b1.StartedAt.Before(b2.FinishedAt) {
		t.Errorf("b1 (%s-%s) and b2 (%s-%s) did not overlap", b1.StartedAt, b1.FinishedAt, b2.StartedAt, b2.FinishedAt)
	}
	e.noContainersLeft()
}

func TestFailureSkipsDependentsAndAlwaysStepsRun(t *testing.T) {
	e := newEnv(t)
	always := e.sh("cleanup", []string{"package"}, "echo cleaning up")
	always.If = "always()"
	onFailure := e.sh("report", []string{"test"}, "echo reporting")
	onFailure.If = "failure()"
	flaky := e.sh("lint", []string{"build"}, "echo lint problems; exit 1")
	flaky.ContinueOnError = true
	p := &pipeline.Pipeline{Steps: []pipeline.Step{
		e.sh("build", nil, "echo building"),
		e.sh("test", []string{"build"}, "echo 'a test failed' >&2", "exit 3", "echo never"),
		e.sh("package", []string{"test"}, "echo packaging"),
		always,
		onFailure,
		flaky,
		e.sh("docs", []string{"lint"}, "echo docs"),
	}}
	rec, err := e.runner().Run(e.ctx, p)
	if !errors.Is(err, pipeline.ErrFailed) {
		t.Fatalf("Run error = %v, want ErrFailed", err)
	}
	if !strings.Contains(err.Error(), "test (exited with code 3)") || strings.Contains(err.Error(), "lint") {
		t.Errorf("Run error = %q, want it to name test and not lint", err)
	}
	if rec.Status != pipeline.StatusFailure {
		t.Errorf("run status %s, want failure", rec.Status)
	}
	wantStatus(t, rec, "build", pipeline.StatusSuccess)
	test := wantStatus(t, rec, "test", pipeline.StatusFailure)
	if test.ExitCode == nil || *test.ExitCode != 3 || test.Reason != "exited with code 3" {
		t.Errorf("test: exit code %v, reason %q; want 3", test.ExitCode, test.Reason)
	}
	if logs := joinLogs(test); !strings.Contains(logs, "a test failed") || strings.Contains(logs, "never") {
		t.Errorf("test logs, want its stderr and nothing after the failing line:\n%s", logs)
	}
	pkg := wantStatus(t, rec, "package", pipeline.StatusSkipped)
	if pkg.Reason != `needed step "test" failed` || len(pkg.Attempts) != 0 || pkg.ExitCode != nil {
		t.Errorf("package: reason %q, %d attempts; want skipped because test failed", pkg.Reason, len(pkg.Attempts))
	}
	if c := wantStatus(t, rec, "cleanup", pipeline.StatusSuccess); !strings.Contains(joinLogs(c), "cleaning up") {
		t.Errorf("cleanup logs:\n%s", joinLogs(c))
	}
	wantStatus(t, rec, "report", pipeline.StatusSuccess)
	if l := wantStatus(t, rec, "lint", pipeline.StatusFailure); !l.ContinueOnError {
		t.Errorf("lint: continueOnError not recorded")
	}
	wantStatus(t, rec, "docs", pipeline.StatusSuccess)
	e.noContainersLeft()
}

func TestTimeoutKillsTheContainer(t *testing.T) {
	e := newEnv(t)
	slow := e.sh("slow", nil, "echo started", "sleep 60")
	slow.Timeout = dao.Duration(time.Second)
	after := e.sh("after", []string{"slow"}, "true")
	after.If = "always()"
	begin := time.Now()
	rec, err := e.runner().Run(e.ctx, &pipeline.Pipeline{Steps: []pipeline.Step{slow, after}})
	took := time.Since(begin)
	if !errors.Is(err, pipeline.ErrFailed) {
		t.Fatalf("Run error = %v, want ErrFailed", err)
	}
	s := wantStatus(t, rec, "slow", pipeline.StatusTimedOut)
	// sh as PID 1 ignores SIGTERM: the grace passes and SIGKILL ends it.
	if s.ExitCode == nil || *s.ExitCode != 137 {
		t.Errorf("exit code %v, want 137 (SIGKILL)", s.ExitCode)
	}
	if !strings.HasPrefix(s.Reason, "timed out after 1s; container stopped, killed by signal 9") {
		t.Errorf("reason %q", s.Reason)
	}
	if !strings.Contains(joinLogs(s), "started") {
		t.Errorf("logs before the timeout are missing:\n%s", joinLogs(s))
	}
	if took > 6*time.Second {
		t.Errorf("run took %s, want about the 1s timeout and the 0.3s grace", took)
	}
	wantStatus(t, rec, "after", pipeline.StatusSuccess)
	e.noContainersLeft()
}

func TestRetriesRetry(t *testing.T) {
	e := newEnv(t)
	// Fails on attempts 1 and 2, succeeds on the third; a counter in the workspace proves
	// each attempt ran.
	counting := func(name string, retries int) pipeline.Step {
		s := e.sh(name, nil,
			`n=$(cat `+name+`.count 2>/dev/null || echo 0); n=$((n+1)); echo $n > `+name+`.count`,
			`echo "attempt $n (DAO_ATTEMPT=$DAO_ATTEMPT)"`,
			`[ "$n" -ge 3 ]`)
		s.Retries = retries
		return s
	}
	rec, err := e.runner().Run(e.ctx, &pipeline.Pipeline{Steps: []pipeline.Step{counting("enough", 3), counting("short", 1)}})
	if !errors.Is(err, pipeline.ErrFailed) {
		t.Fatalf("Run error = %v, want ErrFailed (short runs out of retries)", err)
	}
	enough := wantStatus(t, rec, "enough", pipeline.StatusSuccess)
	if n := len(enough.Attempts); n != 3 {
		t.Errorf("enough: %d attempts, want 3", n)
	}
	for i, a := range enough.Attempts {
		want := pipeline.StatusFailure
		if i == 2 {
			want = pipeline.StatusSuccess
		}
		if a.Number != i+1 || a.Status != want || a.ContainerID == "" {
			t.Errorf("attempt %d: %+v, want number %d status %s", i, a, i+1, want)
		}
		if i > 0 && a.ContainerID == enough.Attempts[i-1].ContainerID {
			t.Errorf("attempts %d and %d share container %s", i, i+1, a.ContainerID)
		}
	}
	if !strings.Contains(joinLogs(enough), "attempt 3 (DAO_ATTEMPT=3)") {
		t.Errorf("logs:\n%s", joinLogs(enough))
	}
	short := wantStatus(t, rec, "short", pipeline.StatusFailure)
	if len(short.Attempts) != 2 {
		t.Errorf("short: %d attempts, want 2 (1 retry)", len(short.Attempts))
	}
	e.noContainersLeft()
}

func TestSecretsNeverShow(t *testing.T) {
	e := newEnv(t)
	const secret = "s3cr3t-value-42"
	var (
		mu   sync.Mutex
		live []string
	)
	s := e.sh("leaky", nil,
		`[ "$TOKEN" = "`+secret+`" ] && echo "the step has its secret"`,
		`echo "token=$TOKEN"`,
		`echo "$TOKEN" >&2`,
		// Split across two writes, read apart by the runner.
		`printf 's3cr3t-'; sleep 0.4; printf 'value-42 done\n'`,
		`echo "tok=$TOKEN" >> "$DAO_OUTPUT"`,
		`echo "$TOKEN" > leaked.txt`,
		`exit 1`)
	s.Secrets = []string{"TOKEN"}
	rec, err := e.runner().Run(e.ctx, &pipeline.Pipeline{Steps: []pipeline.Step{s}},
		pipeline.WithSecrets(map[string]string{"TOKEN": secret}),
		pipeline.WithLogFunc(func(l pipeline.LogLine) {
			mu.Lock()
			live = append(live, l.Text)
			mu.Unlock()
		}))
	if !errors.Is(err, pipeline.ErrFailed) {
		t.Fatalf("Run error = %v, want ErrFailed", err)
	}
	b, _ := json.MarshalIndent(rec, "", "  ")
	if strings.Contains(string(b), secret) || strings.Contains(err.Error(), secret) {
		t.Errorf("the secret is in the record or the error:\n%s\n%v", b, err)
	}
	mu.Lock()
	liveText := strings.Join(live, "\n")
	mu.Unlock()
	if strings.Contains(liveText, secret) {
		t.Errorf("the secret is in the live logs:\n%s", liveText)
	}
	for _, want := range []string{"the step has its secret", "token=***", "\n***\n", "*** done"} {
		if !strings.Contains(liveText, want) {
			t.Errorf("live logs lack %q:\n%s", want, liveText)
		}
	}
	if got := step(t, rec, "leaky").Outputs["tok"]; got != "***" {
		t.Errorf("output tok = %q, want ***", got)
	}
	// A secret missing from the run is refused before anything runs.
	_, err = e.runner().Run(e.ctx, &pipeline.Pipeline{Steps: []pipeline.Step{s}})
	var verr *dao.ValidationError
	if !errors.As(err, &verr) || !verr.Has("steps.leaky.secrets[0]") {
		t.Errorf("Run without the secret = %v, want a validation error on steps.leaky.secrets[0]", err)
	}
}

func TestSecondRunHitsTheCache(t *testing.T) {
	e := newEnv(t)
	ws := t.TempDir()
	if err := os.WriteFile(filepath.Join(ws, "deps.lock"), []byte("left-pad 1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deps := e.sh("deps", nil,
		"echo work >> work.log", // outside the cache: counts the runs that did the work
		"mkdir -p .cache",
		"date +%s%N > .cache/built",
		`echo "built=$(cat .cache/built)" >> "$DAO_OUTPUT"`)
	deps.Cache = &pipeline.Cache{KeyFiles: []string{"*.lock"}, Paths: []string{".cache"}, SkipOnHit: true}
	use := e.sh("use", []string{"deps"}, `[ "$(cat .cache/built)" = "${{ steps.deps.outputs.built }}" ] && echo "cache and output agree"`)
	p := &pipeline.Pipeline{Steps: []pipeline.Step{deps, use}}
	r := e.runner()
	run := func() *pipeline.Record {
		t.Helper()
		rec, err := r.Run(e.ctx, p, pipeline.WithWorkspace(ws))
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, joinLogs(rec.Step("use")))
		}
		if !strings.Contains(joinLogs(step(t, rec, "use")), "cache and output agree") {
			t.Errorf("use:\n%s", joinLogs(step(t, rec, "use")))
		}
		return rec
	}
	first := step(t, run(), "deps")
	if first.Cache == nil || first.Cache.Hit || !first.Cache.Saved || len(first.Attempts) != 1 {
		t.Fatalf("first run: cache %+v, %d attempts; want a miss, saved, one attempt", first.Cache, len(first.Attempts))
	}
	// The cache restores what the first run made, even when the workspace lost it.
	if err := os.RemoveAll(filepath.Join(ws, ".cache")); err != nil {
		t.Fatal(err)
	}
	second := step(t, run(), "deps")
	if second.Cache == nil || !second.Cache.Hit || second.Cache.Key != first.Cache.Key {
		t.Fatalf("second run: cache %+v, want a hit on %s", second.Cache, first.Cache.Key)
	}
	if second.Status != pipeline.StatusSuccess || second.Reason != "cache hit: work skipped" || len(second.Attempts) != 0 {
		t.Errorf("second run: %s (%s), %d attempts; want success without running", second.Status, second.Reason, len(second.Attempts))
	}
	if second.Outputs["built"] != first.Outputs["built"] || first.Outputs["built"] == "" {
		t.Errorf("outputs %v, want those of the first run %v", second.Outputs, first.Outputs)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "work.log")); strings.Count(string(b), "work") != 1 {
		t.Errorf("work.log = %q, want the work done once", b)
	}
	// A changed key file misses.
	if err := os.WriteFile(filepath.Join(ws, "deps.lock"), []byte("left-pad 1.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	third := step(t, run(), "deps")
	if third.Cache.Hit || third.Cache.Key == first.Cache.Key || len(third.Attempts) != 1 {
		t.Errorf("third run after the lock file changed: cache %+v", third.Cache)
	}
	e.noContainersLeft()
}

// recordingDeployer remembers what it was asked to deploy.
type recordingDeployer struct {
	mu    sync.Mutex
	calls []string
}

func (d *recordingDeployer) Deploy(ctx context.Context, service, image string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, service+"="+image)
	return nil
}

func TestBuiltImageIsPushedRunAndDeployed(t *testing.T) {
	e := newEnv(t)
	bin, err := testutil.BuildTestApp()
	if err != nil {
		t.Fatalf("build testapp: %v", err)
	}
	ws := t.TempDir()
	// The workspace holds what an earlier job compiled: a static program.
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(ws, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "out", "app"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Parse([]byte(`
name: deliver
steps:
  version:
    image: ` + e.busybox + `
    commands:
      - echo "tag=1.2.3" >> "$DAO_OUTPUT"
  image:
    needs: [version]
    build:
      ref: dao.test/built:${{ steps.version.outputs.tag }}
      add:
        - {src: out/app, dst: /app}
      entrypoint: [/app]
      cmd: [-say, "built ${{ steps.version.outputs.tag }}", -exit, "0"]
  smoke:
    needs: [image]
    image: ${{ steps.image.outputs.image }}
  deploy:
    needs: [smoke]
    deploy:
      service: web
      image: ${{ steps.image.outputs.image }}
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	d := &recordingDeployer{}
	rec, err := e.runner(pipeline.WithDeployer(d)).Run(e.ctx, p, pipeline.WithWorkspace(ws))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	img := wantStatus(t, rec, "image", pipeline.StatusSuccess)
	ref, digest, pinned := img.Outputs["ref"], img.Outputs["digest"], img.Outputs["image"]
	if ref != "dao.test/built:1.2.3" || !strings.HasPrefix(digest, "sha256:") || pinned != "dao.test/built@"+digest {
		t.Errorf("image outputs %v", img.Outputs)
	}
	if smoke := wantStatus(t, rec, "smoke", pipeline.StatusSuccess); !strings.Contains(joinLogs(smoke), "built 1.2.3") {
		t.Errorf("the pipeline's own run of its image:\n%s", joinLogs(smoke))
	}
	wantStatus(t, rec, "deploy", pipeline.StatusSuccess)
	if want := []string{"web=" + pinned}; !slices.Equal(d.calls, want) {
		t.Errorf("deployer calls %v, want %v", d.calls, want)
	}
	// And the image runs through edge.Runtime, by tag and by digest.
	for i, name := range []string{ref, pinned} {
		id := fmt.Sprintf("check-%d", i)
		if _, err := e.rt.Run(e.ctx, id, dao.ContainerSpec{Image: name}); err != nil {
			t.Fatalf("Run %s: %v", name, err)
		}
		st, err := e.rt.Wait(e.ctx, id)
		if err != nil || st.ExitCode != 0 {
			t.Fatalf("Wait %s: %v, exit %d", name, err, st.ExitCode)
		}
		rc, err := e.rt.Logs(e.ctx, id, edge.LogOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(rc)
		rc.Close()
		if !strings.Contains(string(out), "built 1.2.3") {
			t.Errorf("%s printed %q", name, out)
		}
		if err := e.rt.Remove(e.ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	e.noContainersLeft()
}

func TestServicesAreReachableAndRemoved(t *testing.T) {
	state := t.TempDir()
	const bridge = "daopl0"
	t.Cleanup(func() { _ = exec.Command("ip", "link", "delete", bridge).Run() })
	e := newEnv(t, edge.WithNetwork(edge.Network{
		Name:     "daopipeline",
		Bridge:   bridge,
		Subnet:   "198.18.60.0/24",
		StateDir: filepath.Join(state, "cni"),
		NetNSDir: filepath.Join(state, "netns"),
	}))
	app := testutil.TestAppImage(t, e.ctrd)
	svc := pipeline.Service{Name: "web", Image: app, Args: []string{"-listen", ":8080", "-version", "svc-ok"}, Ports: []int{8080}}
	byAddress := e.sh("by-address", nil, `echo "address $DAO_SERVICE_WEB"`, `wget -qO- "http://$DAO_SERVICE_WEB:8080/"`, "echo", "cat /etc/hosts")
	byAddress.Services = []pipeline.Service{svc}
	// The Go resolver of testapp reads /etc/hosts: the service's name works as a host name.
	// It needs by-address only so that the two do not set up CNI at once: under -race, go-cni's
	// go-deadlock mutex takes two goroutines' read locks for one recursive lock and exits.
	byName := pipeline.Step{Name: "by-name", Needs: []string{"by-address"}, Image: app, Args: []string{"-check", "http://web:8080/healthz"}, Services: []pipeline.Service{svc}}
	rec, err := e.runner().Run(e.ctx, &pipeline.Pipeline{Steps: []pipeline.Step{byAddress, byName}})
	if err != nil {
		t.Fatalf("Run: %v\n%s\n%s", err, joinLogs(rec.Step("by-address")), joinLogs(rec.Step("by-name")))
	}
	logs := joinLogs(step(t, rec, "by-address"))
	if !strings.Contains(logs, "svc-ok") || !regexp.MustCompile(`address 198\.18\.60\.\d+`).MatchString(logs) || !regexp.MustCompile(`198\.18\.60\.\d+\tweb`).MatchString(logs) {
		t.Errorf("by-address logs:\n%s", logs)
	}
	wantStatus(t, rec, "by-name", pipeline.StatusSuccess)
	e.noContainersLeft()

	// A service that never listens fails its step, with its output in the step's log.
	broken := e.sh("broken", nil, "true")
	broken.Services = []pipeline.Service{{Name: "db", Image: e.busybox, Commands: []string{"echo db is starting", "sleep 30"}, Ports: []int{5432}, ReadyTimeout: dao.Duration(time.Second)}}
	rec, err = e.runner().Run(e.ctx, &pipeline.Pipeline{Steps: []pipeline.Step{broken}})
	if !errors.Is(err, pipeline.ErrFailed) {
		t.Fatalf("Run = %v, want ErrFailed", err)
	}
	s := wantStatus(t, rec, "broken", pipeline.StatusFailure)
	if !strings.Contains(s.Reason, "service db: port 5432 accepted no connection within 1s") || !strings.Contains(joinLogs(s), "db is starting") {
		t.Errorf("reason %q, logs:\n%s", s.Reason, joinLogs(s))
	}
	e.noContainersLeft()
}

func TestServicesNeedANetwork(t *testing.T) {
	e := newEnv(t)
	s := e.sh("s", nil, "true")
	s.Services = []pipeline.Service{{Name: "db", Image: e.busybox, Commands: []string{"sleep 30"}}}
	rec, err := e.runner().Run(e.ctx, &pipeline.Pipeline{Steps: []pipeline.Step{s}})
	if !errors.Is(err, pipeline.ErrFailed) || !strings.Contains(step(t, rec, "s").Reason, "need a Runtime with a network") {
		t.Errorf("Run = %v, reason %q; want a failure naming the missing network", err, rec.Step("s").Reason)
	}
	e.noContainersLeft()
}

func TestCancelStopsEveryContainer(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		started = map[string]bool{}
	)
	logf := func(l pipeline.LogLine) {
		if l.Runner && strings.Contains(l.Text, "started") {
			mu.Lock()
			started[l.Step] = true
			if len(started) == 2 {
				cancel()
			}
			mu.Unlock()
		}
	}
	p := &pipeline.Pipeline{Steps: []pipeline.Step{
		e.sh("one", nil, "sleep 60"),
		e.sh("two", nil, "sleep 60"),
		e.sh("three", []string{"one"}, "true"),
	}}
	begin := time.Now()
	rec, err := e.runner().Run(ctx, p, pipeline.WithLogFunc(logf))
	took := time.Since(begin)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run error = %v, want context.Canceled", err)
	}
	if rec.Status != pipeline.StatusCancelled {
		t.Errorf("run status %s, want cancelled", rec.Status)
	}
	for _, name := range []string{"one", "two", "three"} {
		wantStatus(t, rec, name, pipeline.StatusCancelled)
	}
	if took > 10*time.Second {
		t.Errorf("Run returned %s after its start, want soon after the cancel", took)
	}
	e.noContainersLeft()
}

func TestMatrixOutputsConditionsAndLogs(t *testing.T) {
	e := newEnv(t)
	var (
		mu   sync.Mutex
		live []pipeline.LogLine
	)
	p, err := pipeline.Parse([]byte(`
steps:
  gen:
    image: ` + e.busybox + `
    commands:
      - echo "version=1.2" >> "$DAO_OUTPUT"
      - printf 'notes<<EOF\nfirst line\nsecond line\nEOF\n' >> "$DAO_OUTPUT"
  test:
    needs: [gen]
    image: ` + e.busybox + `
    matrix:
      os: [linux, darwin]
      n: ["1", "2"]
    commands:
      - echo "testing ${{ steps.gen.outputs.version }} on $MATRIX_OS shard ${{ matrix.n }}"
      - sleep 0.5
  release:
    needs: [test]
    if: steps.gen.outputs.version == '1.2'
    image: ` + e.busybox + `
    commands: [echo releasing]
  hotfix:
    needs: [test]
    if: steps.gen.outputs.version == '9.9'
    image: ` + e.busybox + `
    commands: [echo never]
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	rec, err := e.runner(pipeline.WithParallelism(2)).Run(e.ctx, p, pipeline.WithLogFunc(func(l pipeline.LogLine) {
		mu.Lock()
		live = append(live, l)
		mu.Unlock()
	}))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := step(t, rec, "gen").Outputs; got["version"] != "1.2" || got["notes"] != "first line\nsecond line" {
		t.Errorf("gen outputs %q", got)
	}
	var instances []*pipeline.StepRecord
	for _, os := range []string{"darwin", "linux"} {
		for _, n := range []string{"1", "2"} {
			s := wantStatus(t, rec, fmt.Sprintf("test (n=%s, os=%s)", n, os), pipeline.StatusSuccess)
			if want := fmt.Sprintf("testing 1.2 on %s shard %s", os, n); !strings.Contains(joinLogs(s), want) {
				t.Errorf("%s logs lack %q:\n%s", s.Name, want, joinLogs(s))
			}
			instances = append(instances, s)
		}
	}
	// At most 2 steps ran at once: when any started, at most one other was running.
	for _, a := range instances {
		running := 0
		for _, b := range instances {
			if !b.StartedAt.After(a.StartedAt) && b.FinishedAt.After(a.StartedAt) {
				running++
			}
		}
		if running > 2 {
			t.Errorf("when %s started, %d instances ran (itself included), want at most 2 with parallelism 2", a.Name, running)
		}
	}
	wantStatus(t, rec, "release", pipeline.StatusSuccess)
	if h := wantStatus(t, rec, "hotfix", pipeline.StatusSkipped); h.Reason != `condition "steps.gen.outputs.version == '9.9'" is false` {
		t.Errorf("hotfix reason %q", h.Reason)
	}
	// Log lines carry times, in order for each step, in the record and live.
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z `)
	for _, s := range rec.Steps {
		for _, l := range s.Logs {
			if !stamp.MatchString(l) {
				t.Fatalf("%s: log line without a time: %q", s.Name, l)
			}
		}
	}
	last := map[string]time.Time{}
	mu.Lock()
	defer mu.Unlock()
	for _, l := range live {
		if l.Time.Before(last[l.Step]) {
			t.Errorf("%s: live line %q out of order", l.Step, l.Text)
		}
		last[l.Step] = l.Time
	}
	if len(live) == 0 {
		t.Error("no live log lines")
	}
	e.noContainersLeft()
}
