// Package dao holds the domain types shared by every part of Dao, an embeddable Go SDK for
// running containers at scale over containerd.
//
// A Go program imports Dao's packages and composes its own control plane from them:
//
//   - [github.com/opendao/dao/edge] runs one node's containers on containerd: [edge.Runtime]
//     creates, starts, stops, watches and cleans up containers; [edge.Agent] converges the node
//     to the full set of tasks assigned to it and restarts exited containers locally.
//   - [github.com/opendao/dao/registry] builds OCI images, talks to OCI registries and pulls
//     images into containerd.
//   - [github.com/opendao/dao/policy] holds placement ([policy.Placer]: filters and scorers),
//     admission, restart and cleaning rules as plain Go functions that compose.
//   - github.com/opendao/dao/orchestrator turns services into tasks, places them on nodes and
//     heals the cluster; github.com/opendao/dao/pipeline runs build-and-deliver pipelines in
//     containers.
//
// This package imports none of them. It defines the data they exchange: a [ContainerSpec]
// says what to run, a [ServiceSpec] how many copies, where and how to update them, a [Node] is
// a machine that runs them and a [Task] is one slot of a service on one node, with its
// observed [TaskStatus]. All of them are plain, JSON-serialisable values, and each has a
// Validate method whose error names the field and the reason, and quotes what it refuses
// cut to [MaxQuoted] runes ([Quote]). Validate also bounds every number, duration, length
// and count of a spec to what the kernel, containerd and the control plane honour
// ([MaxReplicas], [MaxMilliCPU], [MaxDuration] and the other Max constants), so that what
// validates runs as written:
//
//	spec := dao.ServiceSpec{
//		Name:     "web",
//		Replicas: 3,
//		Container: dao.ContainerSpec{
//			Image:     "registry.example.com/web:1.0",
//			Resources: dao.Resources{MilliCPU: 500, Memory: 64 * dao.MiB},
//		},
//	}
//	if err := spec.Validate(); err != nil {
//		// err is a *dao.ValidationError; errors.Is(err, dao.ErrInvalid) holds, and
//		// errors.As(err, &fe) with a dao.FieldError fe gives its first problem.
//	}
//
// # Errors
//
// Every Dao package speaks one vocabulary of errors: each sentinel is of one of containerd's
// error classes (github.com/containerd/errdefs), so errdefs.IsNotFound(err),
// errdefs.IsInvalidArgument(err) and the rest answer for any Dao error as for containerd's,
// while errors.Is still tells one package's sentinel from another's. [ErrInvalid], of class
// errdefs.ErrInvalidArgument, is matched by every error of validation and by every option
// given a value it does not accept. Where several errors are collected (a ValidationError's
// problems, a pipeline run's failed steps), errors.Is and errors.As see each of them.
//
// Task states only move forward (see [TaskState.CanTransition]); a container that the node
// restarts locally stays the same task, counted in [TaskStatus.Restarts].
package dao
