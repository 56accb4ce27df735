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
// Images come from containerd's image store: imported (ctrd.Import, in registry/ctrd) or pulled
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
//	defer agent.Close() // before rt.Close: deferred calls run last first
//	err = agent.Assign(edge.Assignment{Revision: 1, Tasks: tasks})
//
// # Events
//
// [Runtime.Subscribe] returns a channel of what containerd says of the Runtime's containers:
// starts, exits (with exit code and OOM kill), OOM kills, and resyncs when events may have
// been missed. The Runtime never waits for a subscriber: each subscription buffers up to
// [WithSubscribeBuffer] events ([DefaultSubscribeBuffer]) its reader has not received, and a
// reader that falls further behind is dropped: it gets a last [Event] of type [EventError]
// whose Err is [ErrSlowSubscriber], and its channel is closed, so it re-reads what it needs
// (List, Status) and subscribes again, as a watcher of orchestrator's store does after
// ErrSlowWatcher. A slow reader never holds up the others, containerd's event stream, or
// Close.
//
// # Logs
//
// Each container's stdout and stderr are appended to <log dir>/<id>.log ([WithLogDir]), which
// [Runtime.Logs] reads and follows, and which is rotated past [WithLogMaxSize]. A logger
// process writes it, which containerd's shim starts for the container and owns (the shim's
// binary logging), so output is kept while no Dao process runs. The shim starts the container
// once its logger is ready, so the logger is part of every start. The logger is the first of:
//   - the program [WithLoggerBinary] names;
//   - dao-shim-logger beside the program's executable or on PATH, the fastest: install it
//     with `go install github.com/opendao/dao/edge/cmd/dao-shim-logger@latest`, and with
//     GOBIN on PATH every `go run` and `go test` of a program that uses edge finds it too;
//   - the program's own executable, if it is statically linked (built with CGO_ENABLED=0):
//     importing edge makes a program turn into the logger, before most of its package
//     initialisers run, when the shim starts it with the logger's arguments;
//   - a shell script that the Runtime writes into the log directory (sh and two cats).
//
// Each copies both streams until they end, ignoring the SIGTERM that the shim sends when the
// task is deleted until it has, so a deleted task's log is whole, and appends, so a
// restarted container's log keeps its earlier output. Should the shim not be able to start a
// logger the Runtime found by itself (containerd in another mount namespace, sharing only
// the log directory with the program), the Runtime falls back to the script. Measured on 2
// cores, the logger costs in CPU: dao-shim-logger about 1.2 ms, a static program's own
// executable 1.7 ms, the script 2.1 ms (three processes), and a program built with cgo 2.4
// ms, which is why such a program keeps the script.
//
// # Nothing left running
//
// Every goroutine edge starts belongs to a Runtime or an Agent and ends in its Close, which
// waits for it. [Runtime.Close] ends the event stream, log rotation and every subscription
// (each with a last EventError of [ErrClosed]), and closes the connection to containerd if
// [New] opened it. [Agent.Close] ends Run (which returns ErrClosed) and waits for its task
// workers, health checks, removals and report loop; no status is reported after it. Neither
// stops a container: they run on under containerd. A removal that Agent.Close cuts off (a
// container waiting out its stop grace period, say) leaves the container as it was, and the
// next Agent over the namespace, which finds a container of no assigned task, stops and
// removes it. NewAgent starts nothing; New starts the event and log loops.
//
// Package edge has no package-level mutable state: two Runtimes in one program share nothing
// but containerd (give each its own log directory: rotation knows only its own Runtime's
// readers).
//
// # Errors
//
// Each error of edge is of one of containerd's error classes (package
// github.com/containerd/errdefs), so a caller may ask errdefs.IsNotFound(err) of it as of
// containerd's own, or errors.Is(err, edge.ErrNotFound) for edge's sentinel:
//
//	ErrNotFound, ErrImageNotFound   NotFound
//	ErrAlreadyExists                AlreadyExists
//	ErrRunning, ErrNoNetwork        FailedPrecondition
//	ErrClosed                       FailedPrecondition (for good: not Unavailable, which says "retry")
//	ErrNotOwned                     PermissionDenied
//	ErrStaleRevision                Conflict
//	ErrSlowSubscriber               ResourceExhausted
//	ErrInvalidOption                InvalidArgument (it is dao.ErrInvalid)
//
// An invalid spec is a *dao.ValidationError, of dao.ErrInvalid. An error of containerd's that
// a Runtime passes on keeps its class (errdefs.IsUnavailable while containerd restarts, see
// [IsUnavailable]). Where several things failed (a failed create and the cleanups after it,
// several bad fields of a Network), the error is a *multierror.Error
// (github.com/hashicorp/go-multierror) and errors.Is and errors.As see each.
//
// # Options
//
// Every option family (Option for New, AgentOption, CreateOption, StopOption) is a function
// that may fail; each WithX says its default, and a bad value (an empty name, a negative
// period, a nil function) makes the call fail with an [ErrInvalidOption] naming the option,
// before anything is done.
package edge
