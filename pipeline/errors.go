package pipeline

import (
	"errors"
	"fmt"
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

// ParseError is the error of Parse and Load: every problem of a file, in the order of their
// lines, each with its field, line and column. Its text lists one problem a line:
//
//	invalid pipeline pipeline.yaml: 2 problems:
//	  pipeline.yaml:5: steps.test.needs[0]: unknown step "lint"
//	  pipeline.yaml:9:11: steps.test.if: unknown function "sucess"; did you mean success()?
//
// errors.Is(err, dao.ErrInvalid) is true for it; errors.As sees each Problem, and the same
// problems as a *dao.ValidationError whose dao.FieldErrors have " (line L)" or " (line L,
// column C)" at the end of their reasons.
type ParseError struct {
	// File is the file's path, for Load; "" for Parse.
	File string
	// Problems are the problems, those without a line first.
	Problems []Problem

	validation *dao.ValidationError
}

// Problem is one problem of a pipeline file.
type Problem struct {
	// Field is the field's path as the file spells it, such as "steps.test.needs[0]" or
	// "steps.test.timeout-minutes"; "yaml" for a problem of the YAML itself.
	Field string
	// Line and Column are where the problem is, counted from 1; 0 when not known (Column is
	// known for YAML syntax errors and expressions).
	Line, Column int
	// Reason says what is wrong.
	Reason string
}

// Error returns "line L, column C: field: reason", the place left out when not known.
func (p Problem) Error() string { return p.at("") + p.Field + ": " + p.Reason }

// Is reports whether target is dao.ErrInvalid or its class.
func (p Problem) Is(target error) bool { return errors.Is(dao.ErrInvalid, target) }

// at returns where the problem is, followed by ": ": "file:L:C: ", or "line L, column C: "
// without a file; "" when the line is not known.
func (p Problem) at(file string) string {
	switch {
	case p.Line <= 0 && file != "":
		return file + ": "
	case p.Line <= 0:
		return ""
	case file != "" && p.Column > 0:
		return fmt.Sprintf("%s:%d:%d: ", file, p.Line, p.Column)
	case file != "":
		return fmt.Sprintf("%s:%d: ", file, p.Line)
	case p.Column > 0:
		return fmt.Sprintf("line %d, column %d: ", p.Line, p.Column)
	}
	return fmt.Sprintf("line %d: ", p.Line)
}

// Error lists the problems one a line, at most dao.MaxProblems of them.
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("invalid pipeline")
	if e.File != "" {
		b.WriteString(" " + e.File)
	}
	if len(e.Problems) == 1 {
		b.WriteString(": " + e.Problems[0].at(e.File) + e.Problems[0].Field + ": " + e.Problems[0].Reason)
		return b.String()
	}
	fmt.Fprintf(&b, ": %d problems:", len(e.Problems))
	for i, p := range e.Problems {
		if i == dao.MaxProblems {
			fmt.Fprintf(&b, "\n  and %d more", len(e.Problems)-i)
			break
		}
		b.WriteString("\n  " + p.at(e.File) + p.Field + ": " + p.Reason)
	}
	return b.String()
}

// Is reports whether target is dao.ErrInvalid or its class.
func (e *ParseError) Is(target error) bool { return errors.Is(dao.ErrInvalid, target) }

// Unwrap returns the problems as a *dao.ValidationError, then each Problem.
func (e *ParseError) Unwrap() []error {
	errs := make([]error, 0, len(e.Problems)+1)
	if e.validation != nil {
		errs = append(errs, e.validation)
	}
	for _, p := range e.Problems {
		errs = append(errs, p)
	}
	return errs
}
