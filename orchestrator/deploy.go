package orchestrator

import (
	"context"
	"errors"
	"fmt"
)

// Deploy updates a service to run image and waits for the rolling update to finish, as
// `kubectl set image` followed by `kubectl rollout status` would: it returns nil once every
// task runs the new version (UpdateCompleted), and an error wrapping ErrUpdateFailed when the
// update paused or was rolled back, or when another update replaced it before it finished.
// Only the image of the service's container changes; the update follows the service's
// Update policy. Deploying the image the service already runs waits for any update in
// progress and changes nothing. Deploy stops waiting, and returns ctx's error, when ctx is
// done; the update goes on.
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
	version := svc.Version
	for {
		if done, err := deployDone(svc, version, image); done {
			return err
		}
		// Watch from the revision read: a change made since is delivered, none is missed.
		events, err := o.store.Watch(ctx, svc.Revision+1, WatchTypes(ServiceObject), WatchService(service))
		if errors.Is(err, ErrCompacted) {
			if svc, err = o.Service(ctx, service); err != nil {
				return fmt.Errorf("deploy %s: %w", service, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("deploy %s: %w", service, err)
		}
		if svc, err = o.followDeploy(ctx, events, service, version, image); err != nil || svc == nil {
			return err
		}
	}
}

// followDeploy reads service events until the deploy is decided. It returns the service
// read again when the watch ended early (the caller watches again), and nil when done.
func (o *Orchestrator) followDeploy(ctx context.Context, events <-chan Event, service string, version uint64, image string) (*Service, error) {
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
			if done, err := deployDone(e.Service, version, image); done {
				return nil, err
			}
		}
	}
}

// deployDone says whether the update to version has finished, and how.
func deployDone(svc *Service, version uint64, image string) (bool, error) {
	st := svc.UpdateStatus
	switch {
	case st.State == UpdatePaused || st.State == UpdateRollingBack || st.State == UpdateRolledBack ||
		st.State == UpdateRollbackPaused:
		// A rollback changes the spec, and so the version: check the state first.
		return true, fmt.Errorf("deploy %s to %s: %w: %s: %s", svc.ID, image, ErrUpdateFailed, st.State, st.Message)
	case svc.Version != version:
		return true, fmt.Errorf("deploy %s: %w: superseded by version %d (image %s)",
			svc.ID, ErrUpdateFailed, svc.Version, svc.Spec.Container.Image)
	case st.State == UpdateInProgress:
		return false, nil
	default: // completed, or no update: the service was created with this spec
		return true, nil
	}
}
