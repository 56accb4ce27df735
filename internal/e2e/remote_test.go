package e2e

import (
	"context"
	"crypto/rand"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster/pki"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/internal/testutil/netns"
	"github.com/opendao/dao/orchestrator"
)

func appService(name string, replicas int) dao.ServiceSpec {
	return dao.ServiceSpec{Name: name, Replicas: replicas, Container: dao.ContainerSpec{
		Image: testutil.TestAppImageName, Resources: dao.Resources{MilliCPU: 10, Memory: 16 * dao.MiB}}}
}

// TestRemoteAgentsSpreadAServiceAndRideOutAPartition: three dao agent programs, each in a
// network namespace of its own behind a veth into one bridge, join a control plane over
// mutual TLS and run a service; containerd shows its containers. One agent is then cut off
// (its packets dropped) for longer than the heartbeat timeout: its containers run on, one
// that crashes is restarted there, and when the network is back nothing was created again
// and no slot runs twice.
func TestRemoteAgentsSpreadAServiceAndRideOutAPartition(t *testing.T) {
	testutil.RequireIntegration(t, "ip", "iptables")
	lab := netns.NewLab(t, 11)
	c := testutil.StartContainerd(t)
	creates := countCreations(t, c.Client)
	p := newPlane(t, lab.HostIP(), orchestrator.WithHeartbeatTimeout(2*time.Second), orchestrator.WithGrace(time.Minute))

	names := []string{"a1", "a2", "a3"}
	hosts := map[string]*netns.Host{}
	var nss []string
	for _, n := range names {
		hosts[n] = lab.AddHost(n)
		ns := "agent-" + n
		nss = append(nss, ns)
		importApp(t, c, ns)
		startAgent(t, hosts[n], n, p.addr, p.token, c.Address, ns, filepath.Join(t.TempDir(), n))
	}
	waitFor(t, "3 agents connected", time.Minute, func() bool { return len(p.srv.Connected()) == 3 })
	if _, err := p.o.CreateService(p.ctx, appService("web", 6)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "6 containers running under containerd", time.Minute, func() bool {
		return len(slotsRunning(t, c.Client, "web", nss...)) == 6 && len(p.running("web")) == 6
	})
	for _, ns := range nss {
		if n := len(running(t, c.Client, ns)); n != 2 {
			t.Errorf("containerd namespace %s runs %d containers, want 2 (the service spreads)", ns, n)
		}
	}

	// Cut a1 off: every packet in and out of its namespace is dropped.
	victim := "agent-a1"
	createdBefore, _ := creates.in(victim)
	pids := running(t, c.Client, victim)
	hosts["a1"].Partition(t)
	cut := time.Now()
	waitFor(t, "a1 disconnected", 15*time.Second, func() bool { return p.nodeState("a1") == dao.NodeDisconnected })
	for id, pid := range pids {
		if now := running(t, c.Client, victim)[id]; now != pid {
			t.Errorf("partitioned, container %s changed: pid %d, was %d", id, now, pid)
		}
	}
	// One of its containers crashes: a1 restarts it on its own.
	crashed := slices.Sorted(maps.Keys(pids))[0]
	if err := syscall.Kill(int(pids[crashed]), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the crashed container restarted by its partitioned agent", 30*time.Second, func() bool {
		pid := running(t, c.Client, victim)[crashed]
		return pid != 0 && pid != pids[crashed]
	})
	if p.nodeState("a1") != dao.NodeDisconnected {
		t.Fatalf("a1 is %s during the partition, want disconnected", p.nodeState("a1"))
	}
	// Longer than the heartbeat timeout, shorter than the grace.
	if d := 4*time.Second - time.Since(cut); d > 0 {
		time.Sleep(d)
	}
	hosts["a1"].Heal(t)
	waitFor(t, "a1 ready again", time.Minute, func() bool { return p.nodeState("a1") == dao.NodeReady })
	time.Sleep(2 * time.Second) // what a reconnection would wrongly do, it does at once

	if after, ids := creates.in(victim); after != createdBefore {
		t.Errorf("containers created on a1: %d before the partition, %d after (%v), want no new ones", createdBefore, after, ids)
	}
	slots := slotsRunning(t, c.Client, "web", nss...)
	if len(slots) != 6 {
		t.Errorf("running slots %v, want 6", slots)
	}
	for slot, n := range slots {
		if n != 1 {
			t.Errorf("slot %s runs %d containers", slot, n)
		}
	}
	if all, _ := p.o.Tasks(p.ctx, orchestrator.TaskFilter{ServiceID: "web"}); len(all) != 6 {
		t.Errorf("%d tasks of web after the partition, want the 6 of before", len(all))
	}
}

// TestRebootedAgentRestoresItsAssignmentOffline: an agent and its containerd die, and
// containerd's state is wiped as a reboot would (its --state directory is a tmpfs); both
// start again with the control plane unreachable, and the containers of the agent's last
// assignment run again.
func TestRebootedAgentRestoresItsAssignmentOffline(t *testing.T) {
	testutil.RequireIntegration(t, "ip", "iptables")
	lab := netns.NewLab(t, 12)
	c := testutil.StartContainerd(t)
	p := newPlane(t, lab.HostIP())
	host := lab.AddHost("r1")
	const ns = "agent-r1"
	importApp(t, c, ns)
	stateDir := filepath.Join(t.TempDir(), "r1")
	a := startAgent(t, host, "r1", p.addr, p.token, c.Address, ns, stateDir)
	waitFor(t, "connected", time.Minute, func() bool { return len(p.srv.Connected()) == 1 })
	if _, err := p.o.CreateService(p.ctx, appService("web", 10)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "10 containers running", time.Minute, func() bool { return len(running(t, c.Client, ns)) == 10 })

	// The machine goes down: the agent, then every container, shim and containerd.
	a.kill()
	if err := c.PowerOff(c.Client, ns); err != nil {
		t.Fatal(err)
	}
	p.stop() // and the control plane is gone when it comes back

	c.Start()
	if n := len(running(t, c.Client, ns)); n != 0 {
		t.Fatalf("%d containers run after the wipe, want none", n)
	}
	startAgent(t, host, "r1", p.addr, "", c.Address, ns, stateDir)
	d := waitFor(t, "the 10 containers of the last assignment running again", time.Minute,
		func() bool { return len(running(t, c.Client, ns)) == 10 })
	t.Logf("restored 10 containers %s after the agent started, offline", d.Round(time.Millisecond))
}

// TestAgentWithAWrongTokenSaysSo: a join with a token the control plane never made exits
// with an error that says so, and joins nothing.
func TestAgentWithAWrongTokenSaysSo(t *testing.T) {
	testutil.RequireIntegration(t)
	p := newPlane(t, "127.0.0.1")
	tok, err := pki.ParseJoinToken(p.token)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = rand.Read(tok.Secret[:]) // the right CA, a secret it never made
	other := tok.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, daoProgram(t), "agent", "--join", other, p.addr,
		"--state-dir", t.TempDir(), "--node-id", "intruder", "--containerd", "/nonexistent.sock")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("dao agent with a wrong token succeeded:\n%s", out)
	}
	if !strings.Contains(string(out), "join token") {
		t.Errorf("dao agent with a wrong token says:\n%s\nwant it to name the join token", out)
	}
	if ns, _ := p.o.Nodes(p.ctx); len(ns) != 0 {
		t.Errorf("a refused join added nodes: %v", ns)
	}
}

// TestDisconnectPolicyReplaceMovesAtOnce: a service that would rather run twice than run
// short (DisconnectPolicy.Replace) is replaced elsewhere as soon as its node is cut off;
// when the node is back, the copies it kept running are stopped there, and each slot runs
// once.
func TestDisconnectPolicyReplaceMovesAtOnce(t *testing.T) {
	testutil.RequireIntegration(t, "ip", "iptables")
	lab := netns.NewLab(t, 13)
	c := testutil.StartContainerd(t)
	p := newPlane(t, lab.HostIP(), orchestrator.WithHeartbeatTimeout(2*time.Second), orchestrator.WithGrace(time.Minute))
	hosts := map[string]*netns.Host{}
	nss := []string{"agent-b1", "agent-b2"}
	for i, n := range []string{"b1", "b2"} {
		hosts[n] = lab.AddHost(n)
		importApp(t, c, nss[i])
		startAgent(t, hosts[n], n, p.addr, p.token, c.Address, nss[i], filepath.Join(t.TempDir(), n))
	}
	waitFor(t, "2 agents connected", time.Minute, func() bool { return len(p.srv.Connected()) == 2 })
	spec := appService("eager", 4)
	spec.Disconnect.Replace = true
	if _, err := p.o.CreateService(p.ctx, spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "4 running", time.Minute, func() bool { return len(slotsRunning(t, c.Client, "eager", nss...)) == 4 })
	onB1 := len(running(t, c.Client, "agent-b1"))
	if onB1 == 0 {
		t.Fatal("nothing runs on b1")
	}
	hosts["b1"].Partition(t)
	waitFor(t, "b1's slots replaced on b2", 30*time.Second, func() bool { return len(running(t, c.Client, "agent-b2")) == 4 })
	// b1, cut off, still runs its copies: the policy asked for that.
	if n := len(running(t, c.Client, "agent-b1")); n != onB1 {
		t.Errorf("partitioned b1 runs %d containers, want its %d", n, onB1)
	}
	hosts["b1"].Heal(t)
	waitFor(t, "b1's stale copies stopped once it is back", time.Minute, func() bool {
		return p.nodeState("b1") == dao.NodeReady && len(running(t, c.Client, "agent-b1")) == 0
	})
	for slot, n := range slotsRunning(t, c.Client, "eager", nss...) {
		if n != 1 {
			t.Errorf("slot %s runs %d containers after b1 came back", slot, n)
		}
	}
}

// TestLossyLinkDoesNotRaiseFalseAlarms: with the default heartbeat timeout, a node whose
// link drops a fifth of its packets both ways stays ready: TCP retransmits, and a late
// heartbeat is not a missing one. (The other side of the trade-off: a silent node is
// disconnected after 5s and down after 8s; see BENCHMARKS.md.)
func TestLossyLinkDoesNotRaiseFalseAlarms(t *testing.T) {
	testutil.RequireIntegration(t, "ip", "iptables")
	lab := netns.NewLab(t, 14)
	c := testutil.StartContainerd(t)
	p := newPlane(t, lab.HostIP()) // every default: heartbeat timeout 5s, grace 3s
	events, err := p.o.Watch(p.ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := lab.AddHost("l1")
	importApp(t, c, "agent-l1")
	startAgent(t, h, "l1", p.addr, p.token, c.Address, "agent-l1", filepath.Join(t.TempDir(), "l1"))
	waitFor(t, "connected", time.Minute, func() bool { return p.nodeState("l1") == dao.NodeReady })
	h.Lossy(t, 0.2)
	time.Sleep(15 * time.Second)
	h.Lossy(t, 0)
	for len(events) > 0 {
		if e := <-events; strings.Contains(e.Cause, "liveness: node l1") {
			t.Errorf("a lossy link raised an alarm: %s", e.Cause)
		}
	}
	if st := p.nodeState("l1"); st != dao.NodeReady {
		t.Errorf("node l1 is %s after 15s of 20%% loss, want ready", st)
	}
}
