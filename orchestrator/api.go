package orchestrator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/opendao/dao"
	"github.com/opendao/dao/policy"
)

// Admit checks a spec as CreateService and UpdateService do, without submitting it: the
// spec's own validation (a *dao.ValidationError), then policy.ValidPlacement and the
// rules of WithAdmission (a *policy.AdmissionError naming every enforced rule broken).
// It returns the violations of audit rules as warnings.
func (o *Orchestrator) Admit(spec *dao.ServiceSpec) (warnings []policy.Violation, err error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	rules := append([]policy.AdmissionRule{policy.ValidPlacement()}, o.opts.admission...)
	return policy.Admit(spec, rules...)
}

func (o *Orchestrator) admit(spec *dao.ServiceSpec, cause string) (string, error) {
	warnings, err := o.Admit(spec)
	if err != nil {
		return "", err
	}
	if len(warnings) > 0 {
		ws := make([]string, len(warnings))
		for i, w := range warnings {
			ws[i] = w.String()
		}
		o.opts.log.Warn("orchestrator: admission warnings", "service", spec.Name, "warnings", ws)
		cause += " (admission warnings: " + strings.Join(ws, "; ") + ")"
	}
	return cause, nil
}

// CreateService admits a spec (see Admit) and creates the service, whose ID is its name:
// ErrExists when a service has it. Its tasks are created, placed and started by Run's
// loops. Warnings of audit rules are named in the cause of the service's event.
func (o *Orchestrator) CreateService(ctx context.Context, spec dao.ServiceSpec) (*Service, error) {
	cause, err := o.admit(&spec, "api: create service "+spec.Name)
	if err != nil {
		return nil, err
	}
	now := o.opts.clock.Now()
	s := &Service{ID: spec.Name, Spec: spec, CreatedAt: now, UpdatedAt: now}
	if err := o.store.Update(ctx, cause, func(tx Tx) error { return tx.CreateService(s) }); err != nil {
		return nil, err
	}
	return s, nil
}

// UpdateService admits a new spec for the service and starts a rolling update to it: the
// old spec becomes PreviousSpec (what RollbackService and an automatic rollback go back
// to), and tasks of the old spec are replaced as spec.Update says. A spec equal to the
// current one changes nothing. The name cannot change.
func (o *Orchestrator) UpdateService(ctx context.Context, id string, spec dao.ServiceSpec) (*Service, error) {
	if spec.Name != id {
		return nil, fmt.Errorf("%w: service %s: the name cannot change (got %q)", dao.ErrInvalid, id, spec.Name)
	}
	cause, err := o.admit(&spec, "api: update service "+id)
	if err != nil {
		return nil, err
	}
	return o.modify(ctx, id, cause, func(s *Service) error {
		if sameSpec(&s.Spec, &spec) {
			return nil
		}
		prev := s.Spec
		s.PreviousSpec = &prev
		s.Spec = spec
		s.UpdatedAt = o.opts.clock.Now()
		s.UpdateStatus = UpdateStatus{State: UpdateInProgress, Message: "update started", StartedAt: s.UpdatedAt}
		return nil
	})
}

// ScaleService sets the number of replicas of a replicated service, admitted as
// UpdateService admits a spec (see Admit). Scaling up creates tasks for the new slots;
// scaling down shuts down the tasks of the highest slots. It does not start a rolling
// update: no task is replaced.
func (o *Orchestrator) ScaleService(ctx context.Context, id string, replicas int) (*Service, error) {
	return o.modify(ctx, id, fmt.Sprintf("api: scale %s to %d", id, replicas), func(s *Service) error {
		if s.Spec.Mode == dao.ModeGlobal {
			return fmt.Errorf("%w: service %s is global: it cannot be scaled", dao.ErrInvalid, id)
		}
		if replicas < 0 {
			return fmt.Errorf("%w: replicas must be >= 0, got %d", dao.ErrInvalid, replicas)
		}
		// The new spec passes what CreateService checks: dao.MaxReplicas, and the
		// operator's rules such as policy.MaxReplicas.
		scaled := s.Spec
		scaled.Replicas = replicas
		if _, err := o.Admit(&scaled); err != nil {
			return err
		}
		if s.PreviousSpec != nil {
			// Keep a rollback from undoing the scale.
			s.PreviousSpec.Replicas = replicas
		}
		s.Spec.Replicas = replicas
		s.UpdatedAt = o.opts.clock.Now()
		return nil
	})
}

// RollbackService rolls the service back to its previous spec, as a rolling update under
// the spec's Rollback policy: slots that run the previous spec are left alone. It fails
// with ErrNoPreviousSpec when there is none.
func (o *Orchestrator) RollbackService(ctx context.Context, id string) (*Service, error) {
	return o.modify(ctx, id, "api: roll back service "+id, func(s *Service) error {
		if s.PreviousSpec == nil {
			return fmt.Errorf("service %s: %w", id, ErrNoPreviousSpec)
		}
		prev := s.Spec
		s.Spec, s.PreviousSpec = *s.PreviousSpec, &prev
		s.UpdatedAt = o.opts.clock.Now()
		s.UpdateStatus = UpdateStatus{State: UpdateRollingBack, Message: "rollback asked by the API", StartedAt: s.UpdatedAt}
		return nil
	})
}

// RemoveService removes the service: its record goes at once, its tasks are shut down and
// deleted once their nodes report them ended (or at once, for tasks on no node or on a
// node that is down).
func (o *Orchestrator) RemoveService(ctx context.Context, id string) error {
	// A store that takes fewer objects at once (TxnLimiter) gets the service's removal
	// with as many of its tasks as fit, then the others in further transactions; a
	// task of a removed service that was not shut down is left running (see the
	// reconciler), so a removal cut short leaves tasks to stop by hand.
	limit := txnLimit(o.store)
	cause := "api: remove service " + id
	more, err := o.shutDownTasks(ctx, cause, id, max(0, limit-1), func(tx Tx) error {
		s, err := tx.Service(id)
		if err != nil {
			return err
		}
		return tx.DeleteService(id, s.Revision)
	})
	for err == nil && more {
		more, err = o.shutDownTasks(ctx, cause+" (more tasks)", id, limit, nil)
	}
	return err
}

// shutDownTasks shuts down, in one transaction with also, at most most (0: all) of the
// service's tasks that are meant to run, and reports whether more are left.
func (o *Orchestrator) shutDownTasks(ctx context.Context, cause, id string, most int, also func(tx Tx) error) (more bool, err error) {
	err = o.updateAgain(ctx, cause, func(tx Tx) error {
		if also != nil {
			if err := also(tx); err != nil {
				return err
			}
		}
		var ts []Task
		for t := range tx.TasksByService(id) {
			if t.DesiredState <= dao.TaskRunning && !t.Status.State.Terminal() {
				if most > 0 && len(ts) == most {
					more = true
					break
				}
				ts = append(ts, t)
			}
		}
		for i := range ts {
			ts[i].DesiredState = dao.TaskShutdown
			if err := tx.UpdateTask(&ts[i]); err != nil {
				return err
			}
		}
		return nil
	})
	return more, err
}

// modify reads, changes and writes a service in one transaction.
func (o *Orchestrator) modify(ctx context.Context, id, cause string, f func(s *Service) error) (*Service, error) {
	var out Service
	err := o.updateAgain(ctx, cause, func(tx Tx) error {
		s, err := tx.Service(id)
		if err != nil {
			return err
		}
		if err := f(&s); err != nil {
			return err
		}
		if err := tx.UpdateService(&s); err != nil {
			return err
		}
		out = s
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// updateAgain runs the transaction of an API call, whose fn reads from the transaction
// everything it writes, and runs it again when the store refused it with ErrConflict
// because another writer changed those objects first: the loops of this orchestrator,
// or, on a shared store (EtcdStore), another replica's. A few tries; the last error is
// returned.
func (o *Orchestrator) updateAgain(ctx context.Context, cause string, fn func(tx Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := o.store.Update(ctx, cause, fn)
		if !errors.Is(err, ErrConflict) || attempt == apiTries || ctx.Err() != nil {
			return err
		}
	}
}

// apiTries is how many times updateAgain runs a transaction.
const apiTries = 5

// Service returns the service with this ID (ErrNotFound when there is none).
func (o *Orchestrator) Service(ctx context.Context, id string) (*Service, error) {
	var s Service
	err := o.store.View(ctx, func(tx ReadTx) error {
		var err error
		s, err = tx.Service(id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// Services returns every service, sorted by ID.
func (o *Orchestrator) Services(ctx context.Context) ([]Service, error) {
	var out []Service
	err := o.store.View(ctx, func(tx ReadTx) error {
		out = slices.Collect(tx.Services())
		return nil
	})
	slices.SortFunc(out, func(a, b Service) int { return strings.Compare(a.ID, b.ID) })
	return out, err
}

// TaskFilter selects tasks for Tasks. Its zero value selects every task.
type TaskFilter struct {
	// ServiceID and NodeID, when set, select the tasks of one service, or on one node.
	ServiceID, NodeID string
	// Live, when set, selects only the tasks that are wanted running and have not ended.
	Live bool
}

// Tasks returns the tasks the filter selects, sorted by service, slot and ID.
func (o *Orchestrator) Tasks(ctx context.Context, f TaskFilter) ([]Task, error) {
	var out []Task
	err := o.store.View(ctx, func(tx ReadTx) error {
		it := tx.Tasks()
		switch {
		case f.ServiceID != "":
			it = tx.TasksByService(f.ServiceID)
		case f.NodeID != "":
			it = tx.TasksByNode(f.NodeID)
		}
		for t := range it {
			if (f.NodeID != "" && t.NodeID != f.NodeID) || (f.Live && !live(&t.Task)) {
				continue
			}
			out = append(out, t)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b Task) int {
		if c := strings.Compare(a.ServiceID, b.ServiceID); c != 0 {
			return c
		}
		if a.Slot != b.Slot {
			return a.Slot - b.Slot
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, err
}

// Task returns the task with this ID (ErrNotFound when there is none).
func (o *Orchestrator) Task(ctx context.Context, id string) (*Task, error) {
	var t Task
	err := o.store.View(ctx, func(tx ReadTx) error {
		var err error
		t, err = tx.Task(id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// Nodes returns every node, sorted by ID.
func (o *Orchestrator) Nodes(ctx context.Context) ([]Node, error) {
	var out []Node
	err := o.store.View(ctx, func(tx ReadTx) error {
		out = slices.Collect(tx.Nodes())
		return nil
	})
	slices.SortFunc(out, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	return out, err
}

// Watch follows the store's changes: see Store.Watch. Each event's Cause names the API
// call, loop or policy that made the change, and why.
func (o *Orchestrator) Watch(ctx context.Context, fromRevision uint64, filters ...WatchFilter) (<-chan Event, error) {
	return o.store.Watch(ctx, fromRevision, filters...)
}

// Store returns the store the orchestrator works on.
func (o *Orchestrator) Store() Store { return o.store }

// sameSpec compares specs as they are stored (JSON), where an empty list and none are the
// same.
func sameSpec(a, b *dao.ServiceSpec) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}
