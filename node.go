package dao

import "time"

// NodeState is what the control plane knows of a node's liveness.
type NodeState string

// Node states.
const (
	// NodeUnknown: the node has never reported.
	NodeUnknown NodeState = "unknown"
	// NodeReady: the node reports on time.
	NodeReady NodeState = "ready"
	// NodeDisconnected: the node missed its heartbeats but is still within its grace period;
	// its containers probably still run.
	NodeDisconnected NodeState = "disconnected"
	// NodeDown: the node missed its heartbeats past the grace period.
	NodeDown NodeState = "down"
)

// Availability says whether a node takes new tasks.
type Availability string

// Node availabilities. The zero value means Active.
const (
	Active Availability = "active"
	// Pause: running tasks stay, new ones go elsewhere.
	Pause Availability = "pause"
	// Drain: tasks move elsewhere.
	Drain Availability = "drain"
)

// Node is a machine that runs tasks.
type Node struct {
	// ID is unique in the cluster and stable across restarts of the node, at most
	// MaxNodeIDBytes. Required.
	ID string `json:"id"`
	// Address is where the control plane or other nodes reach it.
	Address  string            `json:"address,omitempty"`
	Hostname string            `json:"hostname,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Platform Platform          `json:"platform,omitzero"`
	// Capacity is everything the machine has; Allocatable is the part tasks may use.
	Capacity     Resources    `json:"capacity,omitzero"`
	Allocatable  Resources    `json:"allocatable,omitzero"`
	Availability Availability `json:"availability,omitempty"`
	Status       NodeStatus   `json:"status,omitzero"`
}

// NodeStatus is the observed liveness of a node.
type NodeStatus struct {
	State    NodeState `json:"state,omitempty"`
	Message  string    `json:"message,omitempty"`
	LastSeen time.Time `json:"lastSeen,omitzero"`
}

// Validate checks the node and returns a *ValidationError naming every invalid field.
func (n *Node) Validate() error {
	var p problems
	switch {
	case n.ID == "":
		p.add("id", "must not be empty")
	case len(n.ID) > MaxNodeIDBytes:
		p.add("id", "%s is %d bytes, more than the limit of %d", Quote(n.ID), len(n.ID), MaxNodeIDBytes)
	}
	validateLabels(&p, "labels", n.Labels, false)
	n.Capacity.validate(&p, "capacity", false)
	n.Allocatable.validate(&p, "allocatable", false)
	if !n.Capacity.IsZero() && !n.Allocatable.Fits(n.Capacity) {
		p.add("allocatable", "must not exceed capacity")
	}
	switch n.Availability {
	case "", Active, Pause, Drain:
	default:
		p.add("availability", "%s must be active, pause or drain", Quote(string(n.Availability)))
	}
	switch n.Status.State {
	case "", NodeUnknown, NodeReady, NodeDisconnected, NodeDown:
	default:
		p.add("status.state", "%s must be unknown, ready, disconnected or down", Quote(string(n.Status.State)))
	}
	return p.err("node")
}
