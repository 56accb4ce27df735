package pipeline

import (
	"time"
)

// Status is how a step, an attempt or a run ended.
type Status string

// Statuses.
const (
	// StatusSuccess: the step's work succeeded, or a cache hit made it unnecessary.
	StatusSuccess Status = "success"
	// StatusFailure: the step's container exited with a code other than 0, or its build or
	// deploy failed, or a service it needed did not start.
	StatusFailure Status = "failure"
	// StatusTimedOut: the step's last attempt outlived its Timeout and was stopped.
	StatusTimedOut Status = "timed-out"
	// StatusSkipped: the step did not run, because its condition was false; Reason says why.
	StatusSkipped Status = "skipped"
	// StatusCancelled: the run's context was cancelled before or while the step ran.
	StatusCancelled Status = "cancelled"
)

// failed reports whether s is a failure or a time-out.
func (s Status) failed() bool { return s == StatusFailure || s == StatusTimedOut }

// Record is what a run did: the JSON document a CI front end shows or keeps. Secrets given to
// the run appear nowhere in it: they are masked in logs, outputs and reasons.
type Record struct {
	// Pipeline is the pipeline's Name.
	Pipeline string `json:"pipeline,omitempty"`
	// RunID is the run's identifier, part of every container ID of the run.
	RunID string `json:"runId"`
	// Status is StatusSuccess when no step failed (steps with ContinueOnError aside),
	// StatusCancelled when the run was cancelled, and StatusFailure otherwise.
	Status     Status    `json:"status"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	// Steps lists every step in the pipeline's order, a matrix step as one entry per
	// instance.
	Steps []StepRecord `json:"steps"`
}

// Step returns the record of the step (or matrix instance) of that name, or nil.
func (r *Record) Step(name string) *StepRecord {
	for i := range r.Steps {
		if r.Steps[i].Name == name {
			return &r.Steps[i]
		}
	}
	return nil
}

// StepRecord is what one step, or one instance of a matrix step, did.
type StepRecord struct {
	// Name is the step's name, followed for a matrix instance by its values:
	// "test (go=1.26, os=linux)".
	Name string `json:"name"`
	// Step is the name of the step in the pipeline.
	Step string `json:"step"`
	// Matrix holds a matrix instance's values.
	Matrix map[string]string `json:"matrix,omitempty"`
	// Status says how the step ended; Reason says why in words when it did not succeed, or
	// when it succeeded without running ("cache hit: work skipped").
	Status Status `json:"status"`
	Reason string `json:"reason,omitempty"`
	// ContinueOnError is set when the step failed but was allowed to.
	ContinueOnError bool `json:"continueOnError,omitempty"`
	// ExitCode is the exit code of the last attempt's container (128 + the signal when it was
	// killed); nil when no container exited.
	ExitCode *int `json:"exitCode,omitempty"`
	// StartedAt and FinishedAt bound the step's work, services and cache included; zero for a
	// step that never started.
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// Attempts lists the step's attempts, the first first.
	Attempts []Attempt `json:"attempts,omitempty"`
	// Outputs are the key=value pairs the step wrote to $DAO_OUTPUT (or a build step's image).
	Outputs map[string]string `json:"outputs,omitempty"`
	// Cache says whether the step's cache was hit, for a step with a Cache.
	Cache *CacheResult `json:"cache,omitempty"`
	// Artifact is what the step uploaded, for a step with an Upload that succeeded.
	Artifact *ArtifactRecord `json:"artifact,omitempty"`
	// Logs are the step's log lines, each starting with its time (see LogLine.String): its
	// containers' output and what the runner did.
	Logs []string `json:"logs,omitempty"`
}

// Attempt is one try of a step.
type Attempt struct {
	// Number counts from 1.
	Number int `json:"number"`
	// ContainerID is the attempt's container, for a container step.
	ContainerID string `json:"containerId,omitempty"`
	Status      Status `json:"status"`
	Reason      string `json:"reason,omitempty"`
	// ExitCode is the container's exit code, when it exited.
	ExitCode   *int      `json:"exitCode,omitempty"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}

// CacheResult is what a step's cache did.
type CacheResult struct {
	// Key is the cache key: a hex SHA-256.
	Key string `json:"key"`
	// Hit is true when the key was found and its paths restored.
	Hit bool `json:"hit"`
	// Saved is true when the step's paths were saved under the key after it succeeded.
	Saved bool `json:"saved,omitempty"`
	// Error says why the cache could not be read or saved; the step runs without it.
	Error string `json:"error,omitempty"`
}
