package orchestrator

import (
	"maps"
	"reflect"
	"slices"

	"github.com/opendao/dao"
)

// Deep copies and comparisons of the stored types. Copies normalise empty slices and maps
// to nil and allocate slices to their exact length, so that an append to a copy never
// writes into memory that something else shares. copy_test.go checks, by reflection, that
// every field of the dao types is copied and compared: a field added there without a line
// here fails it.

func cloneSlice[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	out := make(S, len(s))
	copy(out, s)
	return out
}

func cloneMap[M ~map[K]V, K comparable, V any](m M) M {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

func cloneContainerSpec(s *dao.ContainerSpec) dao.ContainerSpec {
	c := *s
	c.Command = cloneSlice(s.Command)
	c.Args = cloneSlice(s.Args)
	c.Env = cloneSlice(s.Env)
	c.Mounts = cloneSlice(s.Mounts)
	c.Ports = cloneSlice(s.Ports)
	if s.HealthCheck != nil {
		h := *s.HealthCheck
		h.Command = cloneSlice(h.Command)
		c.HealthCheck = &h
	}
	c.CapAdd = cloneSlice(s.CapAdd)
	c.CapDrop = cloneSlice(s.CapDrop)
	c.Labels = cloneMap(s.Labels)
	return c
}

func equalHealthCheck(a, b *dao.HealthCheck) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.Command, b.Command) && a.Interval == b.Interval && a.Timeout == b.Timeout &&
		a.StartPeriod == b.StartPeriod && a.Retries == b.Retries
}

// equalContainerSpec reports whether two specs ask for the same thing; nil and empty
// slices and maps are equal.
func equalContainerSpec(a, b *dao.ContainerSpec) bool {
	return a.Image == b.Image &&
		slices.Equal(a.Command, b.Command) &&
		slices.Equal(a.Args, b.Args) &&
		slices.Equal(a.Env, b.Env) &&
		a.WorkingDir == b.WorkingDir &&
		a.User == b.User &&
		a.Hostname == b.Hostname &&
		a.Resources == b.Resources &&
		slices.Equal(a.Mounts, b.Mounts) &&
		slices.Equal(a.Ports, b.Ports) &&
		equalHealthCheck(a.HealthCheck, b.HealthCheck) &&
		a.ReadOnlyRootfs == b.ReadOnlyRootfs &&
		a.Privileged == b.Privileged &&
		slices.Equal(a.CapAdd, b.CapAdd) &&
		slices.Equal(a.CapDrop, b.CapDrop) &&
		a.HostNetwork == b.HostNetwork &&
		a.HostPID == b.HostPID &&
		a.HostIPC == b.HostIPC &&
		a.Seccomp == b.Seccomp &&
		a.StopSignal == b.StopSignal &&
		a.StopGracePeriod == b.StopGracePeriod &&
		maps.Equal(a.Labels, b.Labels)
}

func cloneServiceSpec(s *dao.ServiceSpec) dao.ServiceSpec {
	c := *s
	c.Labels = cloneMap(s.Labels)
	c.Container = cloneContainerSpec(&s.Container)
	c.Placement.Constraints = cloneSlice(s.Placement.Constraints)
	c.Placement.Spread = cloneSlice(s.Placement.Spread)
	c.Placement.Platforms = cloneSlice(s.Placement.Platforms)
	return c
}

// equalServiceSpec compares two specs that cloneServiceSpec made (so that empty slices
// and maps are nil in both). Service writes are rare: reflection is fast enough, and it
// cannot miss a field.
func equalServiceSpec(a, b *dao.ServiceSpec) bool {
	return reflect.DeepEqual(a, b)
}

func cloneService(s *Service) *Service {
	c := *s
	c.Spec = cloneServiceSpec(&s.Spec)
	if s.PreviousSpec != nil {
		p := cloneServiceSpec(s.PreviousSpec)
		c.PreviousSpec = &p
	}
	return &c
}

// cloneNode copies a node; like, when not nil, is the stored node it replaces, whose
// labels the copy shares when they are equal.
func cloneNode(n *Node, like *Node) *Node {
	c := *n
	if like != nil && like.Labels != nil && maps.Equal(n.Labels, like.Labels) {
		c.Labels = like.Labels
	} else {
		c.Labels = cloneMap(n.Labels)
	}
	return &c
}

func cloneNodeValue(n *Node) Node {
	c := *n
	c.Labels = cloneMap(n.Labels)
	return c
}
