// Package pipeline will run build-and-deliver pipelines as a Go library: a DAG of steps in
// containers on edge.Runtime, building OCI images with package registry, pushing them and
// handing them to a deployer such as the orchestrator.
//
// It is being built (see the project's issues); nothing here is usable yet.
package pipeline
