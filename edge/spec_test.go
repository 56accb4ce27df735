package edge_test

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opendao/dao"
)

// ociSpec returns containerd's record of the container's OCI spec.
func (e *env) ociSpec(id string) *specs.Spec {
	e.t.Helper()
	ctx := e.ctrd.Context(e.ctx)
	c, err := e.ctrd.Client.LoadContainer(ctx, id)
	if err != nil {
		e.t.Fatalf("containerd LoadContainer(%s): %v", id, err)
	}
	s, err := c.Spec(ctx)
	if err != nil {
		e.t.Fatalf("containerd Spec(%s): %v", id, err)
	}
	return s
}

// output runs spec to its end and returns its logs and exit code.
func (e *env) output(id string, spec dao.ContainerSpec) (string, int) {
	e.t.Helper()
	e.run(id, spec)
	st := e.wait(id, 30*time.Second)
	return e.logs(id), st.ExitCode
}

// TestLargeCPULimitsReachTheKernel: a CPU limit of math.MaxInt64 or 1e14 millicores wrapped
// around to a negative CFS quota, and the container ran without a CPU limit. The largest
// valid limit reaches the container's cgroup exactly.
func TestLargeCPULimitsReachTheKernel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i, milli := range []int64{1_000_000, 100_000_000_000, dao.MaxMilliCPU} {
		id := fmt.Sprintf("cpu-%d", i)
		e.run(id, dao.ContainerSpec{Image: e.busybox, Resources: dao.Resources{MilliCPU: milli},
			Command: []string{"sleep", "60"}, StopSignal: "SIGKILL"})
		want := milli * 100
		oci := e.ociSpec(id)
		cpu := oci.Linux.Resources.CPU
		if cpu == nil || cpu.Quota == nil || *cpu.Quota != want || cpu.Period == nil || *cpu.Period != 100_000 {
			t.Errorf("%d millicores: OCI cpu = %+v, want quota %d per 100000", milli, cpu, want)
		}
		// What the kernel holds (cgroup v1 here; v2 writes "quota period" to cpu.max).
		var got string
		for _, f := range []string{"/sys/fs/cgroup/cpu" + oci.Linux.CgroupsPath + "/cpu.cfs_quota_us", "/sys/fs/cgroup" + oci.Linux.CgroupsPath + "/cpu.max"} {
			if b, err := os.ReadFile(f); err == nil {
				got = strings.Fields(string(b))[0]
				break
			}
		}
		if got != fmt.Sprint(want) {
			t.Errorf("%d millicores: the container's cgroup has quota %q, want %d", milli, got, want)
		}
		if _, err := e.rt.Stop(e.ctx, id); err != nil {
			t.Errorf("Stop(%s): %v", id, err)
		}
	}
	for _, milli := range []int64{math.MaxInt64, 1e14, dao.MaxMilliCPU + 1} {
		err := e.rt.Create(e.ctx, "cpu-too-much", dao.ContainerSpec{Image: e.busybox, Resources: dao.Resources{MilliCPU: milli}})
		var verr *dao.ValidationError
		if !errors.As(err, &verr) || !verr.Has("resources.milliCPU") {
			t.Errorf("Create with %d millicores = %v, want a validation error of resources.milliCPU", milli, err)
		}
	}
}

// TestSeccompDefaultProfile: containers ran with no seccomp filter (Seccomp: 0 in
// /proc/self/status), where docker and containerd's CRI apply their default profile.
func TestSeccompDefaultProfile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// unshare(CLONE_NEWUSER) needs no capability, but the default profile allows unshare
	// only with CAP_SYS_ADMIN.
	probe := []string{"sh", "-c", "grep Seccomp: /proc/self/status; /bin/busybox unshare -U /bin/busybox true && echo unshare-ok"}

	logs, _ := e.output("default", dao.ContainerSpec{Image: e.busybox, Command: probe})
	sc := e.ociSpec("default").Linux.Seccomp
	if sc == nil || sc.DefaultAction != specs.ActErrno || len(sc.Syscalls) == 0 {
		t.Errorf("OCI seccomp = %+v, want the default profile", sc)
	}
	if !strings.Contains(logs, "Seccomp:\t2") || strings.Contains(logs, "unshare-ok") || !strings.Contains(logs, "not permitted") {
		t.Errorf("default profile: logs %q, want seccomp mode 2 and unshare refused", logs)
	}

	logs, _ = e.output("unconfined", dao.ContainerSpec{Image: e.busybox, Command: probe, Seccomp: dao.SeccompUnconfined})
	if sc := e.ociSpec("unconfined").Linux.Seccomp; sc != nil {
		t.Errorf("unconfined: OCI seccomp = %+v, want none", sc)
	}
	if !strings.Contains(logs, "Seccomp:\t0") || !strings.Contains(logs, "unshare-ok") {
		t.Errorf("unconfined: logs %q, want seccomp mode 0 and unshare allowed", logs)
	}

	// With CAP_SYS_ADMIN the profile allows unshare, as docker's does.
	logs, _ = e.output("sysadmin", dao.ContainerSpec{Image: e.busybox, Command: probe, CapAdd: []string{"SYS_ADMIN"}})
	if !strings.Contains(logs, "Seccomp:\t2") || !strings.Contains(logs, "unshare-ok") {
		t.Errorf("CAP_SYS_ADMIN: logs %q, want seccomp mode 2 and unshare allowed", logs)
	}

	e.run("privileged", dao.ContainerSpec{Image: e.busybox, Command: []string{"true"}, Privileged: true})
	if sc := e.ociSpec("privileged").Linux.Seccomp; sc != nil {
		t.Errorf("privileged: OCI seccomp = %+v, want none, as with docker", sc)
	}
}

// TestCapabilitiesAsDocker: an unknown capability validated and was dropped without a word,
// and "ALL" beside another name in CapDrop dropped nothing.
func TestCapabilitiesAsDocker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	err := e.rt.Create(e.ctx, "bad-cap", dao.ContainerSpec{Image: e.busybox, CapAdd: []string{"NOT_A_CAP"}})
	var verr *dao.ValidationError
	if !errors.As(err, &verr) || !verr.Has("capAdd[0]") {
		t.Errorf("Create with capAdd NOT_A_CAP = %v, want a validation error of capAdd[0]", err)
	}

	create := func(id string, add, drop []string) []string {
		t.Helper()
		if err := e.rt.Create(e.ctx, id, dao.ContainerSpec{Image: e.busybox, CapAdd: add, CapDrop: drop}); err != nil {
			t.Fatalf("Create(%s): %v", id, err)
		}
		caps := e.ociSpec(id).Process.Capabilities
		if !slices.Equal(caps.Bounding, caps.Effective) || !slices.Equal(caps.Bounding, caps.Permitted) {
			t.Errorf("%s: bounding %v, effective %v, permitted %v differ", id, caps.Bounding, caps.Effective, caps.Permitted)
		}
		return caps.Bounding
	}
	defaults := create("defaults", nil, nil)
	if !slices.Contains(defaults, "CAP_CHOWN") || slices.Contains(defaults, "CAP_NET_ADMIN") {
		t.Fatalf("default capabilities %v", defaults)
	}
	if got := create("drop-all", []string{"net_bind_service"}, []string{"ALL", "chown"}); !slices.Equal(got, []string{"CAP_NET_BIND_SERVICE"}) {
		t.Errorf("drop ALL and chown, add net_bind_service: %v, want only CAP_NET_BIND_SERVICE", got)
	}
	got := create("add-all", []string{"all"}, []string{"CAP_NET_RAW"})
	if slices.Contains(got, "CAP_NET_RAW") || !slices.Contains(got, "CAP_SYS_ADMIN") || len(got) < 38 {
		t.Errorf("add ALL, drop NET_RAW: %v, want every capability of the kernel but CAP_NET_RAW", got)
	}
	got = create("tweak", []string{"Cap_Net_Admin"}, []string{"chown"})
	if !slices.Contains(got, "CAP_NET_ADMIN") || slices.Contains(got, "CAP_CHOWN") || len(got) != len(defaults) {
		t.Errorf("add NET_ADMIN, drop CHOWN: %v, want the defaults %v with that change", got, defaults)
	}
}
