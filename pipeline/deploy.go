package pipeline

import "context"

// Deployer updates a service to run an image: what a deploy step hands its image to. The
// orchestrator satisfies it; a program may also wrap its own deployment tool.
//
// Deploy returns when the update is accepted or done, as the implementation documents; an
// error fails the step (and is retried when the step has Retries). It must stop when ctx is
// done, which happens when the step times out or the run is cancelled. A Deployer is called
// from the run's goroutines and must be safe for simultaneous use.
type Deployer interface {
	Deploy(ctx context.Context, service, image string) error
}

// DeployerFunc adapts a function to a Deployer.
type DeployerFunc func(ctx context.Context, service, image string) error

// Deploy calls f.
func (f DeployerFunc) Deploy(ctx context.Context, service, image string) error {
	return f(ctx, service, image)
}

var _ Deployer = DeployerFunc(nil)
