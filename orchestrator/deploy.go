package orchestrator

import (
	"context"
	"errors"
	"fmt"
)

// Deploy updates a service to run image and waits for the rolling update to finish, as
// `kubectl set image` followed by `kubectl rollout status` would: it returns nil once every
// task runs the new version (UpdateCompleted), and an *UpdateError (errors.Is
// ErrUpdateFailed) when it did not:
//
//   - the update failed and was rolled back: Deploy returns once the rollback has
//     finished, when every task runs the previous spec again (UpdateRolledBack,
//     errors.Is ErrRolledBack), or when the rollback itself paused
//     (UpdateRollbackPaused, errors.Is ErrUpdatePaused);
//   - the update paused (UpdatePaused, errors.Is ErrUpdatePaused);
//   - another change of the service's image replaced it before it finished.
//
// The error's Reason is the service's update message, which says why ("rollback: 1 of 3
// tasks failed within 5s, ..."). Only the image of the service's container changes; the
// update follows the service's Update policy, and a scale while it runs does not end it.
// Deploying the image the service already runs waits for any update to it in progress and
// changes nothing. Deploy stops waiting, and returns ctx's error, when ctx is done; the
// update goes on.
//
// Deploy makes *Orchestrator a pipeline.Deployer.
func (o *Orchestrator) Deploy(ctx context.Context, service, image string) error {
	svc, err := o.Service(ctx, service)
	if err != nil {
		return fmt.Errorf("deploy %s: %w", service, err)
	}
	if svc.Spec.Container.Image == image {
		switch svc.UpdateStatus.State {
		case UpdateInProgress:
		default:
			return nil // nothing to change, and no update to wait for
		}
	} else {
		spec := svc.Spec
		spec.Container.Image = image
		if svc, err = o.UpdateService(ctx, service, spec); err != nil {
			return fmt.Errorf("deploy %s: %w", service, err)
		}
	}
	for {
		if done, err := deployDone(svc, image); done {
			return err
		}
		if svc, err = o.watchDeploy(ctx, svc, service, image); err != nil || svc == nil {
			return err
		}
	}
}

// watchDeploy watches the service from the revision of svc until the deploy is decided,
// as followDeploy does, and ends its watch before it returns: Deploy leaves no goroutine
// running.
func (o *Orchestrator) watchDeploy(ctx context.Context, svc *Service, service, image string) (*Service, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Watch from the revision read: a change made since is delivered, none is missed.
	events, err := o.store.Watch(ctx, svc.Revision+1, WatchTypes(ServiceObject), WatchService(service))
	if errors.Is(err, ErrCompacted) {
		if svc, err = o.Service(ctx, service); err != nil {
			return nil, fmt.Errorf("deploy %s: %w", service, err)
		}
		return svc, nil
	}
	if err != nil {
		return nil, fmt.Errorf("deploy %s: %w", service, err)
	}
	defer func() {
		cancel()
		for range events {
		}
	}()
	return o.followDeploy(ctx, events, service, image)
}

// followDeploy reads service events until the deploy is decided. It returns the service
// read again when the watch ended early (the caller watches again), and nil when done.
func (o *Orchestrator) followDeploy(ctx context.Context, events <-chan Event, service, image string) (*Service, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("deploy %s: waiting for the update: %w", service, ctx.Err())
		case e, ok := <-events:
			if !ok || e.Err != nil {
				if errors.Is(e.Err, ErrClosed) {
					return nil, fmt.Errorf("deploy %s: %w", service, e.Err)
				}
				svc, err := o.Service(ctx, service)
				if err != nil {
					return nil, fmt.Errorf("deploy %s: %w", service, err)
				}
				return svc, nil
			}
			if e.Kind == EventDeleted {
				return nil, fmt.Errorf("deploy %s: the service was removed: %w", service, ErrNotFound)
			}
			if done, err := deployDone(e.Service, image); done {
				return nil, err
			}
		}
	}
}

// deployDone says whether the update of the service to image has finished, and how.
func deployDone(svc *Service, image string) (bool, error) {
	st := svc.UpdateStatus
	fail := func() (bool, error) {
		return true, &UpdateError{Service: svc.ID, Image: image, State: st.State, Reason: st.Message}
	}
	rollback := st.State == UpdateRollingBack || st.State == UpdateRolledBack || st.State == UpdateRollbackPaused
	if svc.Spec.Container.Image != image {
		if rollback && svc.PreviousSpec != nil && svc.PreviousSpec.Container.Image == image {
			// The update to image is being rolled back: wait for the rollback to finish.
			if st.State == UpdateRollingBack {
				return false, nil
			}
			return fail()
		}
		return true, &UpdateError{Service: svc.ID, Image: image, State: st.State, Reason: st.Message,
			SupersededBy: svc.Version, SupersededImage: svc.Spec.Container.Image}
	}
	switch st.State {
	case UpdateInProgress, UpdateRollingBack:
		// A rollback to image (of a later update that replaced the one to image) ends
		// with image everywhere too.
		return false, nil
	case UpdatePaused, UpdateRollbackPaused:
		return fail()
	default: // completed, rolled back, or no update: the service was created with this spec
		return true, nil
	}
}

// UpdateError is the error of a Deploy whose rolling update did not complete. It wraps
// ErrUpdateFailed, and ErrRolledBack or ErrUpdatePaused by State.
type UpdateError struct {
	Service string
	// Image is the image Deploy rolled out.
	Image string
	// State is where the update ended: UpdateRolledBack (it failed, was rolled back, and
	// every task runs the previous spec again), UpdateRollbackPaused (it failed, and its
	// rollback paused too), UpdatePaused (it failed and paused, or could not be rolled
	// back); for an update that another replaced, the state of that one.
	State UpdateState
	// Reason is the service's update message: what happened and why ("rolled back: 1 of 3
	// tasks failed within 5s, ...").
	Reason string
	// SupersededBy is the version of the spec that replaced the update's before it
	// finished, and SupersededImage that spec's image; 0 and "" otherwise.
	SupersededBy    uint64
	SupersededImage string
}

func (e *UpdateError) Error() string {
	if e.SupersededBy != 0 {
		return fmt.Sprintf("deploy %s to %s: %v: superseded by version %d (image %s)",
			e.Service, e.Image, ErrUpdateFailed, e.SupersededBy, e.SupersededImage)
	}
	why := e.Reason // "rolled back: ...", "paused: ...", "rollback paused: ..."
	if why == "" {
		why = string(e.State)
	}
	return fmt.Sprintf("deploy %s to %s: %v: %s", e.Service, e.Image, ErrUpdateFailed, why)
}

// Unwrap returns ErrUpdateFailed, with ErrRolledBack or ErrUpdatePaused by State.
func (e *UpdateError) Unwrap() []error {
	errs := []error{ErrUpdateFailed}
	switch {
	case e.SupersededBy != 0:
	case e.State == UpdateRolledBack:
		errs = append(errs, ErrRolledBack)
	case e.State == UpdatePaused, e.State == UpdateRollbackPaused:
		errs = append(errs, ErrUpdatePaused)
	}
	return errs
}
