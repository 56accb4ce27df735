// Package edge runs one node's containers on containerd, and keeps them running.
//
// # Runtime
//
// A [Runtime] turns a [dao.ContainerSpec] into a container under containerd: arguments,
// environment, working directory, user, bind and tmpfs mounts, CPU, memory and pids limits as
// cgroup limits, a read-only root filesystem, no-new-privileges, the default capability set
// changed by CapAdd and CapDrop as docker changes it, and the seccomp profile of docker and
// containerd's CRI unless the spec says unconfined (every capability and no seccomp filter
// only when the spec asks for a privileged container). It stops containers
// with a grace period (the stop signal, then SIGKILL), removes them whole (task, network,
// snapshot and logs; calls that change one container take turns, and none is cut off
// half-way by its context, which would leave a shim containerd cannot reach), reports
// their status and exit from containerd's event stream, keeps each container's
// output in a size-capped log file that can be read and followed, and samples CPU and memory
// use. An OOM kill is reported as such, even when containerd's shim misses it, as it does
// for a process killed right after its start: a SIGKILL exit is checked against the
// cgroup's own count of OOM kills.
//
// Without more configuration each container has a network namespace of its own with only a
// loopback interface (or the host's, with HostNetwork). [WithNetwork] puts containers on a CNI
// bridge network instead: an address each (reported in [ContainerStatus.Addresses] and the
// task status), outbound masquerading, and published ports forwarded from the node.
//
// Images come from containerd's image store: imported (registry.Import) or pulled
// beforehand, or pulled when a container needs one that is missing, with [WithPuller] and a
// *registry.Client (its hosts, mirrors and credentials).
//
// Containers do not depend on the program that started them: they run under containerd's
// shims, which own their loggers too. A new Runtime on the same namespace lists them (List)
// and carries on; nothing is restarted because the program restarted. Nor do they depend on
// containerd staying up: while it restarts, a Runtime from [New] makes its calls wait for it
// (up to their context), [Runtime.Wait] and the event stream carry on, and a start cut off
// half-way is finished once containerd answers again. A task bundle that a killed containerd
// left without a shim, which containerd 1.6 never cleans up and which blocks every new task
// of the container, is removed by [Runtime.Start].
//
//	rt, err := edge.New("/run/containerd/containerd.sock", edge.WithNamespace("dao"))
//	if err != nil {
//		return err
//	}
//	defer rt.Close()
//	_, err = rt.Run(ctx, "hello", dao.ContainerSpec{
//		Image:     "registry.example.com/hello:1.0", // in containerd, or pulled WithPuller
//		Resources: dao.Resources{Memory: 64 * dao.MiB},
//	})
//	st, err := rt.Wait(ctx, "hello")
//	fmt.Println(st.Reason()) // exited with code 0
//
// # Agent
//
// An [Agent] converges the node to its [Assignment], the full set of tasks the control plane
// wants on it, with a revision. It starts what is missing, stops and removes what is no longer
// assigned, restarts exited containers by their task's [dao.RestartPolicy] (the first retry at
// once, then exponential backoff with jitter, reset after a healthy run) without waiting for
// any control plane, runs health checks, and reports every status change. While a container
// waits to be restarted its task stays running with [dao.TaskStatus.Restarting] set, its last
// exit and the time of the next attempt (and [LabelNextRestart] on the container), as a
// Kubernetes pod in CrashLoopBackOff. Re-sending the same assignment changes nothing. A
// container's ID is its task's ID, so whoever restarts (the program, containerd) no container
// is ever duplicated. A removal wins over a restart under way: the restart finishes or stops
// before the removal looks, so no shim, mount, cgroup, network namespace or address of a
// removed container stays behind. With [WithStateDir] the assignment is kept on disk, so after
// a reboot or while the control plane is unreachable the node runs what it was last given.
// With [WithAgentLogger] at Debug level, every decision is logged: assignments, containers
// created, started, exited (and when they restart), stopped and removed, health changes and
// every status sent.
//
//	agent, err := edge.NewAgent(rt,
//		edge.WithStateDir("/var/lib/dao/agent"),
//		edge.WithStatusFunc(func(u edge.TaskUpdate) { log.Println(u.TaskID, u.Status.State) }))
//	go agent.Run(ctx)
//	err = agent.Assign(edge.Assignment{Revision: 1, Tasks: tasks})
package edge
