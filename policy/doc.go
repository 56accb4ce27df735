// Package policy holds the rules a control plane is made of, as plain Go functions and small
// values that compose and need no cluster to test: where a task may run, what a service may
// ask for, when a container restarts, how a rolling update proceeds, how many replicas a
// service needs, and what a node may delete.
//
// It does no I/O and starts no goroutines. It imports only the root package dao and
// github.com/distribution/reference. Everything that depends on time takes it as an
// argument (now time.Time), and the only randomness, restart jitter, comes from a
// *rand.Rand the caller passes in, so that every policy is deterministic in tests.
//
// # Placement
//
// The scheduler places a task with a [Placer]: [Filter]s say whether a node may run the
// task (nil, or an error that explains the refusal), and weighted [Scorer]s rate the nodes
// that passed from 0 to 100. Both are pure functions of the task and a [NodeInfo], the
// scheduler's view of one node: the node, the resources and host ports its tasks use, and
// its tasks per service. A [ClusterInfo], shared by the NodeInfos of one scheduler, counts
// each service's tasks across nodes and per node label value, which the spreading scorers
// read; the scheduler keeps both up to date with [NodeInfo.AddTask] and
// [NodeInfo.RemoveTask] as it places and removes tasks, and calls [ClusterInfo.SetNow] at
// each pass.
//
// [DefaultPlacer] builds the built-in placer for a service's dao.Placement: node ready
// and schedulable, resources fit (CPU, memory, pids, host ports), platforms, label
// constraints (parsed once, see [ParseConstraint]), max replicas per node; then spread over
// label values and over nodes, fewest recent failures and least allocated. For one (task,
// node) pair it runs in about 100ns without allocating, refusals included: refusals are
// preallocated errors, such as [ErrInsufficientMemory]. The smallest complete use:
//
//	cluster := policy.NewClusterInfo()
//	nodes := []*policy.NodeInfo{policy.NewNodeInfo(cluster, node1), policy.NewNodeInfo(cluster, node2)}
//	placer, err := policy.DefaultPlacer(spec.Placement) // once per service version
//	if err != nil {
//		return err // a *SyntaxError: a constraint that does not parse
//	}
//	n, err := placer.Select(task, nodes)
//	if err != nil {
//		return err // a *PlacementError: "3 nodes: insufficient memory; 2 nodes: zone != a"
//	}
//	n.AddTask(task)
//
// A vendor's own rule is a function beside the built-in ones:
//
//	var errNoGPU = errors.New("acme: no free gpu")
//	placer.Filters = append(placer.Filters, policy.Filter{Name: "gpu",
//		Func: func(t *dao.Task, n *policy.NodeInfo) error {
//			if n.Node().Labels["gpu"] == "" {
//				return errNoGPU
//			}
//			return nil
//		}})
//	placer.Scorers = append(placer.Scorers, policy.BinPack().WithWeight(3))
//
// [Refusals] counts refusals by reason for a scheduler that walks the nodes itself.
//
// # Admission
//
// Before the orchestrator accepts a service, [Admit] runs [AdmissionRule]s over its
// dao.ServiceSpec and returns every [Violation] at once, each naming its rule, the field
// and the reason. Rules in [Enforce] mode refuse the service with an *[AdmissionError];
// rules in [Audit] mode admit it and return their violations as warnings. The built-in
// rules follow the Kyverno and Gatekeeper libraries: [AllowedRegistries] (compared on the
// parsed reference's domain and path, so that registry.example.com.evil.io is not
// registry.example.com), [DisallowLatestTag], [RequireDigest], [RequireResourceLimits],
// [DisallowPrivileged], [DisallowHostNamespaces], [RequireReadOnlyRootfs],
// [AllowedCapabilities], [DisallowHostPaths] (bind mounts only under allowed host paths,
// cleaned before they are compared), [DisallowHostPorts], [DisallowProcMount] (no mount over
// /proc or /sys), [RestrictSeccomp] (no unconfined seccomp), [MaxReplicas] (an operator's
// bound below dao.MaxReplicas) and [ValidPlacement]. [Baseline] is a sensible start: the
// controls of Kubernetes' baseline Pod Security Standard that map onto a
// dao.ContainerSpec, widened with [AllowHostPaths] and [AllowHostPorts] where a service
// needs them. Rules may overlap: a violation that several rules report (the same rule,
// field and reason) is reported once.
//
//	registries, err := policy.AllowedRegistries("registry.example.com", "ghcr.io/acme")
//	if err != nil {
//		return err
//	}
//	baseline, err := policy.Baseline(policy.AllowHostPaths("/srv/data"))
//	if err != nil {
//		return err // an option's bad value: errors.Is(err, dao.ErrInvalid)
//	}
//	warnings, err := policy.Admit(&spec, append(baseline, registries,
//		policy.DisallowLatestTag().WithMode(policy.Audit))...)
//	if err != nil {
//		return err // errors.Is(err, policy.ErrNotAdmitted); errors.As gives the violations
//	}
//
// A rule of one's own is a name and a function:
//
//	policy.AdmissionRule{Name: "team-label", Check: func(s *dao.ServiceSpec) []policy.Violation {
//		if s.Labels["team"] == "" {
//			return []policy.Violation{{Field: "labels", Reason: "a team label is required"}}
//		}
//		return nil
//	}}
//
// # Restarts
//
// The edge agent restarts exited containers on its own, without asking the control plane.
// A [RestartTracker] per container applies the task's dao.RestartPolicy: a fast first
// retry, then exponential backoff with jitter up to a maximum, reset once the container
// has run healthy for a while, and a limit of attempts within a window. A [Breaker] per
// service ([Breakers] holds them) is a circuit breaker over those restarts: when a service
// fails too often wherever its containers are, it holds every restart back, then lets one
// trial through and closes once the trial stays up.
//
//	tracker := policy.NewRestartTracker(task.Restart, nil) // nil: randomly seeded jitter
//	breaker := breakers.For(task.ServiceID)
//	// each time the container starts:
//	tracker.Started(time.Now())
//	// each time it exits:
//	d := tracker.Exited(time.Now(), exitCode)
//	if !d.Restart {
//		// the task is complete or failed: d.Reason says why
//	}
//	breaker.Failure(time.Now())
//	// after d.Delay:
//	if ok, retryAt := breaker.Allow(time.Now()); !ok {
//		// ask again at retryAt
//	}
//
// # Rolling updates
//
// The orchestrator replaces a service's tasks batch by batch and asks a [Rollout] what to
// do after each task event: continue with the next batch, wait, pause, roll back, or call
// the update complete. New tasks that fail within the monitor window count against the
// update's MaxFailureRatio, and the window is also the gate between batches: the next batch
// starts only once every task of the last one has run through it. [MonitorWindow] is never
// shorter than the service's health check needs to prove a task unhealthy.
//
//	r := policy.NewRollout(spec.Update, spec.Container.HealthCheck)
//	d := r.Decide(policy.RolloutStatus{Total: 10, Updated: updated}, time.Now())
//	switch d.Action {
//	case policy.RolloutContinue: // start d.Batch more new tasks
//	case policy.RolloutWait: // decide again on the next event, or at d.RecheckAt
//	case policy.RolloutPause, policy.RolloutRollback, policy.RolloutComplete:
//	}
//
// # Autoscaling
//
// [AutoscalePolicy.Decide] has the semantics of the Kubernetes HorizontalPodAutoscaler:
// ceil(current × value / target) per metric, a tolerance, minimum and maximum replicas, and
// per direction a stabilization window and rate limits. It is a pure function of the
// metrics, the earlier recommendations and changes, and the time; an [Autoscaler] keeps
// that history for it.
//
//	a, err := policy.NewAutoscaler(policy.DefaultAutoscalePolicy(2, 20))
//	if err != nil {
//		return err
//	}
//	// every 15s, say:
//	d := a.Decide(time.Now(), replicas, policy.Metric{Name: "cpu", Value: avgMilliCPU, Target: 500})
//	replicas = d.Replicas
//
// # Cleaning
//
// What `dao clean` and a node's garbage collector delete is a [CleanPolicy] applied to an
// [Inventory]: the node's images, containers and snapshots with their sizes, ages,
// references and labels, and its disk usage. [CleanPolicy.Plan] returns a [CleanPlan]
// listing what to delete, in a safe order, and the bytes that frees, for a dry run or to
// carry out. The garbage collector ([GarbageCollect], the default; [DefaultCleanPolicy]
// has the kubelet's 85%/80% thresholds and 2 minute minimum age) acts only under disk
// pressure and deletes the least recently used images first; the prune modes
// ([PruneDangling], [PruneAll]) are the presets of `docker system prune`, with its until and
// label filters. Running containers, the images they use, pinned and recent things are
// never deleted.
//
//	p := policy.DefaultCleanPolicy()
//	p.MinFree = 5 * dao.GiB
//	plan, err := p.Plan(inventory, time.Now())
//	if err != nil {
//		return err
//	}
//	fmt.Println(plan.Reason, "frees", dao.FormatBytes(plan.FreedBytes))
//
// # Errors
//
// Every sentinel of the package is of one of containerd's error classes
// (github.com/containerd/errdefs): a node's refusals are errdefs.ErrFailedPrecondition (not
// ready, paused, draining, another platform, recent failures, an unmet constraint) or
// errdefs.ErrResourceExhausted (cpu, memory, pids, a host port, replicas per node); a
// [PlacementError] is [ErrUnschedulable], a failed precondition; an [AdmissionError] is
// [ErrNotAdmitted], errdefs.ErrPermissionDenied; a [SyntaxError] ([ErrSyntax]) and a policy
// that cannot work ([ErrInvalidPolicy]) are dao.ErrInvalid, so
// errdefs.ErrInvalidArgument. The package keeps no mutable state: [BaselineCapabilities]
// returns a new list at each call.
//
// # Where policies plug in
//
// The orchestrator runs admission rules when a service is submitted, keeps a Placer per
// service version and a NodeInfo per node for its scheduler, asks a Rollout
// during rolling updates and runs an Autoscaler per autoscaled service. The edge agent
// keeps a RestartTracker per task and a Breaker per service, and runs the garbage
// collector's CleanPolicy when its disk fills. The `dao clean` command builds an Inventory
// of the local containerd and prints or carries out a prune-mode plan. Each of them takes
// its policies as values, so a program swaps any built-in rule for its own function.
package policy
