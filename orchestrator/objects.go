package orchestrator

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opendao/dao"
)

// The objects a Store keeps: services, tasks and nodes. Each carries Revision, the store
// revision of its last change, which the store sets on every write and checks on updates
// (optimistic concurrency).

// Service is a service as the orchestrator keeps it: the spec a program asked for, the
// version of that spec, and the state of its rolling update.
type Service struct {
	// ID is unique among services. Required.
	ID string `json:"id"`
	// Version numbers the versions of Spec, from 1. The store sets it: 1 when the service is
	// created, then one more each time an update changes Spec (an update that leaves Spec
	// as it was keeps it). Tasks say which version they run in dao.Task.ServiceVersion.
	Version uint64 `json:"version"`
	// Spec is what the program asked for.
	Spec dao.ServiceSpec `json:"spec"`
	// PreviousSpec is the spec a rollback goes back to, nil when there is none. The store
	// keeps what the writer sets: the writer that changes Spec sets it to the old one.
	PreviousSpec *dao.ServiceSpec `json:"previousSpec,omitempty"`
	// CreatedAt and UpdatedAt are set by the writers; the store does not read a clock.
	CreatedAt time.Time `json:"createdAt,omitzero"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
	// UpdateStatus is the state of the latest rolling update; its zero value means none has
	// run.
	UpdateStatus UpdateStatus `json:"updateStatus,omitzero"`
	// Revision is the store revision of the service's last change. See Tx.UpdateService.
	Revision uint64 `json:"revision"`
}

// Validate checks the ID, the specs and the update state, and returns a *dao.ValidationError
// naming every invalid field. The store does not call it: it checks IDs only, and leaves
// specs to the code that admits them.
func (s *Service) Validate() error {
	var fields []dao.FieldError
	add := func(prefix string, err error) {
		var verr *dao.ValidationError
		switch {
		case err == nil:
		case errors.As(err, &verr):
			for _, fe := range verr.Errors {
				fields = append(fields, dao.FieldError{Field: prefix + fe.Field, Reason: fe.Reason})
			}
		default:
			fields = append(fields, dao.FieldError{Field: strings.TrimSuffix(prefix, "."), Reason: err.Error()})
		}
	}
	if s.ID == "" {
		fields = append(fields, dao.FieldError{Field: "id", Reason: "must not be empty"})
	}
	add("spec.", s.Spec.Validate())
	if s.PreviousSpec != nil {
		add("previousSpec.", s.PreviousSpec.Validate())
	}
	if !s.UpdateStatus.State.Valid() {
		fields = append(fields, dao.FieldError{Field: "updateStatus.state",
			Reason: fmt.Sprintf("%q is not an update state", s.UpdateStatus.State)})
	}
	if len(fields) == 0 {
		return nil
	}
	return &dao.ValidationError{What: "service", Errors: fields}
}

// UpdateState is where a service's rolling update stands.
type UpdateState string

// Update states. The zero value means no update has run.
const (
	// UpdateInProgress: tasks are being replaced by tasks of the new spec.
	UpdateInProgress UpdateState = "updating"
	// UpdatePaused: too many new tasks failed and the update's failure action is pause.
	UpdatePaused UpdateState = "paused"
	// UpdateCompleted: every task runs the new spec.
	UpdateCompleted UpdateState = "completed"
	// UpdateRollingBack: tasks are being replaced by tasks of the previous spec.
	UpdateRollingBack UpdateState = "rolling-back"
	// UpdateRollbackPaused: the rollback itself failed too often and paused.
	UpdateRollbackPaused UpdateState = "rollback-paused"
	// UpdateRolledBack: every task runs the previous spec again.
	UpdateRolledBack UpdateState = "rolled-back"
)

// Valid reports whether s is one of the update states or empty.
func (s UpdateState) Valid() bool {
	switch s {
	case "", UpdateInProgress, UpdatePaused, UpdateCompleted, UpdateRollingBack,
		UpdateRollbackPaused, UpdateRolledBack:
		return true
	}
	return false
}

// UpdateStatus is the state of a service's latest rolling update.
type UpdateStatus struct {
	State UpdateState `json:"state,omitempty"`
	// Message says why it is in that state, such as "paused: 3 of 10 tasks failed within
	// 5s, ..."; once rolled back (or its rollback paused), it keeps why the rollback began:
	// "rolled back: 3 of 10 tasks failed within 5s, ... (all 10 tasks updated)".
	Message     string    `json:"message,omitempty"`
	StartedAt   time.Time `json:"startedAt,omitzero"`
	CompletedAt time.Time `json:"completedAt,omitzero"`
}

// Task is a dao.Task as the orchestrator keeps it: with the store revision of its last
// change. Pass &t.Task where a *dao.Task is wanted.
type Task struct {
	dao.Task
	// Revision is the store revision of the task's last change. See Tx.UpdateTask.
	Revision uint64 `json:"revision"`
}

// Node is a dao.Node as the orchestrator keeps it: with the store revision of its last
// change. Pass &n.Node where a *dao.Node is wanted.
type Node struct {
	dao.Node
	// Revision is the store revision of the node's last change. See Tx.UpdateNode.
	Revision uint64 `json:"revision"`
}
