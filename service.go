package dao

import (
	"fmt"
	"math"
	"regexp"
)

// ServiceMode says how many tasks a service has.
type ServiceMode string

// Service modes. The zero value means ModeReplicated.
const (
	// ModeReplicated runs ServiceSpec.Replicas tasks wherever placement allows.
	ModeReplicated ServiceMode = "replicated"
	// ModeGlobal runs one task on every node that placement allows.
	ModeGlobal ServiceMode = "global"
)

// ServiceSpec is what a program asks the orchestrator to keep running.
type ServiceSpec struct {
	// Name is a DNS label: lowercase letters, digits and '-', at most 63 bytes. Required.
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	// Container is what each task runs.
	Container ContainerSpec `json:"container"`
	// Mode is replicated (the default) or global.
	Mode ServiceMode `json:"mode,omitempty"`
	// Replicas is the number of tasks of a replicated service, at most MaxReplicas; it must
	// be 0 for a global one.
	Replicas int `json:"replicas,omitempty"`
	// Restart says when the node restarts an exited container.
	Restart RestartPolicy `json:"restart,omitzero"`
	// Update says how a change of the spec rolls out.
	Update UpdatePolicy `json:"update,omitzero"`
	// Rollback says how a rollback rolls out; the zero value rolls back like Update.
	Rollback UpdatePolicy `json:"rollback,omitzero"`
	// Placement says which nodes may run the tasks and which are preferred.
	Placement Placement `json:"placement,omitzero"`
	// Disconnect says what happens to tasks on a node that stops sending heartbeats.
	Disconnect DisconnectPolicy `json:"disconnect,omitzero"`
}

// DisconnectPolicy says what happens to a service's tasks on a node that stops sending
// heartbeats. By default they are left alone while the node is merely disconnected (it may
// be cut off from the control plane with its containers still serving), so that nothing
// runs twice, and they are replaced elsewhere once the node is declared down, after the
// orchestrator's grace period.
type DisconnectPolicy struct {
	// Replace replaces the tasks of a disconnected node at once, without waiting for the
	// grace period: for services that would rather run twice for a while than run short.
	// When the node comes back, its old tasks are stopped and the replacements kept (as
	// with a node that was down). Only replicated services may set it.
	Replace bool `json:"replace,omitempty"`
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Validate checks the spec and returns a *ValidationError naming every invalid field.
func (s *ServiceSpec) Validate() error {
	var p problems
	switch {
	case s.Name == "":
		p.add("name", "must not be empty")
	case len(s.Name) > 63 || !dnsLabel.MatchString(s.Name):
		p.add("name", "%s must be a DNS label: lowercase letters, digits and '-', at most 63 bytes", Quote(s.Name))
	}
	validateLabels(&p, "labels", s.Labels, true)
	s.Container.validate(&p, "container")
	switch s.Mode {
	case "", ModeReplicated:
		switch {
		case s.Replicas < 0:
			p.add("replicas", "must be >= 0, got %d", s.Replicas)
		case s.Replicas > MaxReplicas:
			p.add("replicas", "%d is more than the limit of %d", s.Replicas, MaxReplicas)
		}
	case ModeGlobal:
		if s.Replicas != 0 {
			p.add("replicas", "must be 0 for a global service, got %d", s.Replicas)
		}
	default:
		p.add("mode", "%s must be %q or %q", Quote(string(s.Mode)), ModeReplicated, ModeGlobal)
	}
	s.Restart.validate(&p, "restart")
	s.Update.validate(&p, "update")
	s.Rollback.validate(&p, "rollback")
	s.Placement.validate(&p, "placement")
	if s.Disconnect.Replace && s.Mode == ModeGlobal {
		p.add("disconnect.replace", "a global service runs one task per node: its tasks cannot be replaced elsewhere")
	}
	return p.err("service spec")
}

// RestartCondition says which exits of a container lead to a restart.
type RestartCondition string

// Restart conditions. The zero value means RestartAlways.
const (
	RestartAlways    RestartCondition = "always"
	RestartOnFailure RestartCondition = "on-failure"
	RestartNever     RestartCondition = "never"
)

// RestartPolicy says when and how fast a node restarts an exited container. The node does it
// on its own, without asking the control plane. Delays grow from InitialDelay by Multiplier
// up to MaxDelay, each with up to Jitter of random spread; after the container has run for
// ResetAfter the delay starts again from InitialDelay. When MaxAttempts restarts have
// happened within Window, the node gives up and the task fails.
type RestartPolicy struct {
	// Condition is always (the default), on-failure (exit code other than 0) or never.
	Condition RestartCondition `json:"condition,omitempty"`
	// InitialDelay is the wait before the first restart; default 0: at once.
	InitialDelay Duration `json:"initialDelay,omitempty"`
	// MaxDelay caps the wait; default 10s.
	MaxDelay Duration `json:"maxDelay,omitempty"`
	// Multiplier grows the wait after each restart: 1 to MaxRestartMultiplier; default 2.
	// With an InitialDelay of 0 the
	// first restart is immediate and the next ones wait 100ms times Multiplier, then times
	// Multiplier again: 0, 200ms, 400ms, ...
	Multiplier float64 `json:"multiplier,omitempty"`
	// Jitter is the fraction of random spread added to each wait, 0-1; default 0.1.
	Jitter float64 `json:"jitter,omitempty"`
	// ResetAfter is how long a container must run before its delay resets; default 10s.
	ResetAfter Duration `json:"resetAfter,omitempty"`
	// MaxAttempts is the number of restarts allowed within Window; 0 means no limit.
	MaxAttempts int `json:"maxAttempts,omitempty"`
	// Window is the span MaxAttempts counts over; 0 means forever.
	Window Duration `json:"window,omitempty"`
}

// Defaults of RestartPolicy.
const (
	DefaultRestartMaxDelay   = Duration(10_000_000_000)
	DefaultRestartMultiplier = 2.0
	DefaultRestartJitter     = 0.1
	DefaultRestartResetAfter = Duration(10_000_000_000)
)

// WithDefaults returns r with its zero fields set to their defaults.
func (r RestartPolicy) WithDefaults() RestartPolicy {
	if r.Condition == "" {
		r.Condition = RestartAlways
	}
	if r.MaxDelay == 0 {
		r.MaxDelay = DefaultRestartMaxDelay
	}
	if r.Multiplier == 0 {
		r.Multiplier = DefaultRestartMultiplier
	}
	if r.Jitter == 0 {
		r.Jitter = DefaultRestartJitter
	}
	if r.ResetAfter == 0 {
		r.ResetAfter = DefaultRestartResetAfter
	}
	return r
}

// Validate checks the policy and returns a *ValidationError naming every invalid field.
func (r *RestartPolicy) Validate() error {
	var p problems
	r.validate(&p, "")
	return p.err("restart policy")
}

func (r *RestartPolicy) validate(p *problems, at string) {
	switch r.Condition {
	case "", RestartAlways, RestartOnFailure, RestartNever:
	default:
		p.add(join(at, "condition"), "%s must be always, on-failure or never", Quote(string(r.Condition)))
	}
	if validDuration(p, at, "initialDelay", r.InitialDelay) {
		if maxDelay := r.WithDefaults().MaxDelay; r.MaxDelay >= 0 && r.InitialDelay > maxDelay {
			p.add(join(at, "initialDelay"), "%s must not exceed maxDelay %s", r.InitialDelay, maxDelay)
		}
	}
	validDuration(p, at, "maxDelay", r.MaxDelay)
	switch {
	case !finite(r.Multiplier):
		p.add(join(at, "multiplier"), "must be a finite number, got %g", r.Multiplier)
	case r.Multiplier != 0 && (r.Multiplier < 1 || r.Multiplier > MaxRestartMultiplier):
		p.add(join(at, "multiplier"), "must be 0 (default 2) or >= 1 and <= %g, got %g", MaxRestartMultiplier, r.Multiplier)
	}
	validFraction(p, at, "jitter", r.Jitter)
	validDuration(p, at, "resetAfter", r.ResetAfter)
	if r.MaxAttempts < 0 {
		p.add(join(at, "maxAttempts"), "must be >= 0, got %d", r.MaxAttempts)
	}
	validDuration(p, at, "window", r.Window)
}

// validDuration checks a duration of a spec: from 0 to MaxDuration. It reports whether
// the duration is valid.
func validDuration(p *problems, at, name string, d Duration) bool {
	switch {
	case d < 0:
		p.add(join(at, name), "must be >= 0, got %s", d)
	case d > MaxDuration:
		p.add(join(at, name), "%s is more than the limit of %s", d, MaxDuration)
	default:
		return true
	}
	return false
}

// finite reports whether f is neither NaN nor an infinity, which JSON cannot hold.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// validFraction checks a fraction of a spec: a number from 0 to 1.
func validFraction(p *problems, at, name string, f float64) {
	switch {
	case !finite(f):
		p.add(join(at, name), "must be a number between 0 and 1, got %g", f)
	case f < 0 || f > 1:
		p.add(join(at, name), "must be between 0 and 1, got %g", f)
	}
}

// UpdateOrder says whether an old task stops before or after its replacement starts.
type UpdateOrder string

// Update orders. The zero value means StopFirst.
const (
	StopFirst  UpdateOrder = "stop-first"
	StartFirst UpdateOrder = "start-first"
)

// FailureAction is what a rolling update does when too many new tasks fail.
type FailureAction string

// Failure actions. The zero value means ActionPause.
const (
	ActionPause    FailureAction = "pause"
	ActionRollback FailureAction = "rollback"
	ActionContinue FailureAction = "continue"
)

// UpdatePolicy says how a rolling update replaces tasks.
type UpdatePolicy struct {
	// Parallelism is how many tasks are replaced at once; default 1. Use a large number for
	// all at once.
	Parallelism int `json:"parallelism,omitempty"`
	// Delay is the least time between the starts of two batches; the monitor window
	// usually holds the next batch back longer.
	Delay Duration `json:"delay,omitempty"`
	// Order is stop-first (the default: a slot's new task is created once its old one has
	// stopped, so the two never run at once) or start-first (the new task starts first; the
	// old one stops once the new one runs, and is healthy if it has a health check).
	Order UpdateOrder `json:"order,omitempty"`
	// Monitor is how long each new task is watched for failure after it runs (and, with a
	// health check, is healthy), and the gate between batches: the next batch starts only
	// once every task of the last one has run that long without failing (failed, rejected,
	// found unhealthy, or its container exited and was restarted by its node). A task that
	// fails within it counts against MaxFailureRatio. Default DefaultUpdateMonitor (5s, as
	// Docker Swarm's); never shorter than the health check needs to prove a task unhealthy
	// (policy.MonitorWindow).
	Monitor Duration `json:"monitor,omitempty"`
	// FailureAction is pause (the default), rollback or continue.
	FailureAction FailureAction `json:"failureAction,omitempty"`
	// MaxFailureRatio is the fraction of updated tasks that may fail before FailureAction,
	// 0-1; default 0.
	MaxFailureRatio float64 `json:"maxFailureRatio,omitempty"`
}

// DefaultUpdateMonitor is how long a rolling update watches each new task when the policy
// sets no Monitor.
const DefaultUpdateMonitor = Duration(5_000_000_000)

// Validate checks the policy and returns a *ValidationError naming every invalid field.
func (u *UpdatePolicy) Validate() error {
	var p problems
	u.validate(&p, "")
	return p.err("update policy")
}

func (u *UpdatePolicy) validate(p *problems, at string) {
	if u.Parallelism < 0 {
		p.add(join(at, "parallelism"), "must be >= 0, got %d", u.Parallelism)
	}
	validDuration(p, at, "delay", u.Delay)
	switch u.Order {
	case "", StopFirst, StartFirst:
	default:
		p.add(join(at, "order"), "%s must be stop-first or start-first", Quote(string(u.Order)))
	}
	validDuration(p, at, "monitor", u.Monitor)
	switch u.FailureAction {
	case "", ActionPause, ActionRollback, ActionContinue:
	default:
		p.add(join(at, "failureAction"), "%s must be pause, rollback or continue", Quote(string(u.FailureAction)))
	}
	validFraction(p, at, "maxFailureRatio", u.MaxFailureRatio)
}

// Platform is an operating system and CPU architecture, as in OCI image indexes.
type Platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Placement says which nodes may run a service's tasks, and which are preferred.
type Placement struct {
	// Constraints must all hold on a node, in the text form of the policy package:
	// "node.labels.zone == a", "node.labels.disk != hdd", "node.labels.gpu exists",
	// "node.labels.zone in (a, b)".
	Constraints []string `json:"constraints,omitempty"`
	// Spread lists node label keys ("node.labels.zone") to spread tasks evenly across, in
	// order of importance.
	Spread []string `json:"spread,omitempty"`
	// MaxReplicasPerNode caps the tasks of the service on one node; 0 means no cap.
	MaxReplicasPerNode int `json:"maxReplicasPerNode,omitempty"`
	// Platforms, when set, limits the service to nodes of one of them.
	Platforms []Platform `json:"platforms,omitzero"`
}

func (pl *Placement) validate(p *problems, at string) {
	validateTexts(p, join(at, "constraints"), pl.Constraints)
	validateTexts(p, join(at, "spread"), pl.Spread)
	if pl.MaxReplicasPerNode < 0 {
		p.add(join(at, "maxReplicasPerNode"), "must be >= 0, got %d", pl.MaxReplicasPerNode)
	}
	tooMany(p, join(at, "platforms"), len(pl.Platforms))
	for i, pf := range pl.Platforms {
		field := fmt.Sprintf("%s[%d]", join(at, "platforms"), i)
		switch {
		case pf.OS == "" && pf.Architecture == "":
			p.add(field, "must name an os or an architecture")
		case len(pf.OS)+len(pf.Architecture)+len(pf.Variant) > MaxStringBytes:
			p.add(field, "is %d bytes, more than the limit of %d", len(pf.OS)+len(pf.Architecture)+len(pf.Variant), MaxStringBytes)
		}
	}
}

// validateTexts checks a list of non-empty strings of at most MaxStringBytes each.
func validateTexts(p *problems, at string, texts []string) {
	tooMany(p, at, len(texts))
	for i, c := range texts {
		switch {
		case c == "":
			p.add(fmt.Sprintf("%s[%d]", at, i), "must not be empty")
		case len(c) > MaxStringBytes:
			p.add(fmt.Sprintf("%s[%d]", at, i), "%s is %d bytes, more than the limit of %d", Quote(c), len(c), MaxStringBytes)
		}
	}
}
