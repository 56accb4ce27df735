package pipeline

import "errors"

// Errors of the pipeline package. An invalid pipeline is reported as a *dao.ValidationError
// (errors.Is(err, dao.ErrInvalid)); a cancelled run's error wraps the context's error.
var (
	// ErrFailed: a run ended with at least one failed or timed-out step that was not allowed
	// to fail (ContinueOnError). The run record says which and why.
	ErrFailed = errors.New("pipeline: run failed")
	// ErrServiceNotReady: a service container exited, or did not accept connections on its
	// ports within its ready timeout.
	ErrServiceNotReady = errors.New("pipeline: service not ready")
	// ErrNoNetwork: a step has services, but the Runner's Runtime has no network to reach
	// them on (edge.WithNetwork).
	ErrNoNetwork = errors.New("pipeline: services need a Runtime with a network (edge.WithNetwork)")
)
