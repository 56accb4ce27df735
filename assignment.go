package dao

// Assignment is the full set of tasks a control plane wants on one node, at a revision. A
// node converges to it; a newer revision replaces the set whole, and sending the same set
// again changes nothing.
//
// Revisions are compared only between assignments of the same Epoch, which names the
// control plane's state: a node takes an assignment of another epoch whatever its revision,
// since its sender's revisions started over (an in-memory store after a restart of the
// control plane).
type Assignment struct {
	Epoch    string `json:"epoch,omitempty"`
	Revision uint64 `json:"revision"`
	Tasks    []Task `json:"tasks"`
}

// TaskUpdate is a change of a task's status that a node observed.
type TaskUpdate struct {
	TaskID string     `json:"taskID"`
	Status TaskStatus `json:"status"`
}
