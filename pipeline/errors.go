package pipeline

import (
	"errors"
	"io"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/hashicorp/go-multierror"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/errclass"
)

// Errors of the pipeline package. Each is of one of containerd's error classes
// (github.com/containerd/errdefs), so errdefs.IsUnavailable(err) and the like work on them.
// An invalid pipeline is reported as a *dao.ValidationError (errors.Is(err, dao.ErrInvalid),
// and errors.As sees each dao.FieldError); a cancelled run's error wraps the context's error
// (errdefs.IsCanceled or errdefs.IsDeadlineExceeded).
var (
	// ErrFailed: a run ended with at least one failed or timed-out step that was not allowed
	// to fail (ContinueOnError). The run's error is a *RunError, which lists a *StepError
	// per such step; the run record says which and why. It is of class errdefs.ErrAborted:
	// the run stopped short of its end, and the remedy is to run it again once the cause is
	// fixed.
	ErrFailed = errclass.New(errdefs.ErrAborted, "pipeline: run failed")
	// ErrServiceNotReady: a service container exited, or did not accept connections on its
	// ports within its ready timeout (errdefs.ErrUnavailable).
	ErrServiceNotReady = errclass.New(errdefs.ErrUnavailable, "pipeline: service not ready")
	// ErrNoNetwork: a step has services, but the Runner's Runtime has no network to reach
	// them on (edge.WithNetwork) (errdefs.ErrFailedPrecondition).
	ErrNoNetwork = errclass.New(errdefs.ErrFailedPrecondition, "pipeline: services need a Runtime with a network (edge.WithNetwork)")
	// ErrInvalidOption is wrapped by the error of an Option or RunOption given a value it
	// does not accept, and of NewRunner and Run given nil; the error names the option. It is
	// of class dao.ErrInvalid (so errdefs.ErrInvalidArgument).
	ErrInvalidOption = errclass.New(dao.ErrInvalid, "pipeline: invalid option")
)

// RunError is the error of a run that ended with failed steps: errors.Is(err, ErrFailed) is
// true for it, and errors.Is and errors.As see each of its StepErrors (Unwrap), and so the
// error that failed each step, such as a Deployer's error or ErrServiceNotReady.
type RunError struct {
	// RunID is the run's identifier (Record.RunID).
	RunID string
	// Steps lists the steps that failed the run, in the order of the record: those that
	// failed or timed out and were not allowed to (ContinueOnError).
	Steps []*StepError
}

// Error returns "pipeline: run failed: " and each failed step with its reason, such as
// "pipeline: run failed: test (exit status 1); lint (timed out after 1m)".
func (e *RunError) Error() string {
	var b strings.Builder
	b.WriteString(ErrFailed.Error())
	b.WriteString(": ")
	for i, s := range e.Steps {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s.Error())
	}
	return b.String()
}

// Is reports whether target is ErrFailed or one of its classes.
func (e *RunError) Is(target error) bool { return errors.Is(ErrFailed, target) }

// Unwrap returns the StepErrors, for errors.Is and errors.As.
func (e *RunError) Unwrap() []error {
	errs := make([]error, len(e.Steps))
	for i, s := range e.Steps {
		errs[i] = s
	}
	return errs
}

// StepError says why one step, or one instance of a matrix step, failed a run.
type StepError struct {
	// Step is the step's record name (StepRecord.Name): "test" or "test (go=1.26)".
	Step string
	// Status is StatusFailure or StatusTimedOut.
	Status Status
	// Reason is the step's reason in the record, with secrets masked.
	Reason string
	// ExitCode is the exit code of the step's last container, when it exited.
	ExitCode *int
	// Err is the error that failed the step's last attempt, when one did: context's
	// DeadlineExceeded for a step that timed out, ErrServiceNotReady or ErrNoNetwork for its
	// services, a Pusher's or Deployer's error. It is nil for a container that exited with a
	// code other than 0. Its text has the run's secrets masked; the errors it wraps are the
	// originals.
	Err error
}

// Error returns the step's name and reason: "test (exit status 1)".
func (e *StepError) Error() string { return e.Step + " (" + e.Reason + ")" }

// Unwrap returns Err.
func (e *StepError) Unwrap() error { return e.Err }

// maskedError is an error whose text has the run's secrets masked; it wraps the original.
type maskedError struct {
	text string
	err  error
}

func (e *maskedError) Error() string { return e.text }
func (e *maskedError) Unwrap() error { return e.err }

// closeAll closes every one of cs, and returns nil or a *multierror.Error holding each
// error, so that errors.Is and errors.As see all of them.
func closeAll[C io.Closer](cs []C) error {
	var errs *multierror.Error
	for _, c := range cs {
		if err := c.Close(); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	return oneLine(errs.ErrorOrNil())
}

// oneLine returns a *multierror.Error that formats its errors on one line, "a; b", for a
// log line or a step's reason; any other error as it is.
func oneLine(err error) error {
	var me *multierror.Error
	if errors.As(err, &me) {
		me.ErrorFormat = func(es []error) string {
			texts := make([]string, len(es))
			for i, e := range es {
				texts[i] = e.Error()
			}
			return strings.Join(texts, "; ")
		}
	}
	return err
}
