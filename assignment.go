package dao

// Assignment is the full set of tasks a control plane wants on one node, at a revision. A
// node converges to it; a newer revision replaces the set whole, and sending the same set
// again changes nothing.
type Assignment struct {
	Revision uint64 `json:"revision"`
	Tasks    []Task `json:"tasks"`
}

// TaskUpdate is a change of a task's status that a node observed.
type TaskUpdate struct {
	TaskID string     `json:"taskID"`
	Status TaskStatus `json:"status"`
}
