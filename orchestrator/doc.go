// Package orchestrator will turn services into running, healing tasks: a store of services,
// tasks and nodes with revisions and watches, a scheduler that places tasks with the
// placement policies of package policy, control loops that replace failed tasks and roll
// updates out, and a dispatcher that gives each node its full assignment set, which an
// edge.Agent converges to.
//
// It is being built (see the project's issues); nothing here is usable yet. Until it lands,
// a program drives nodes directly through edge.Agent.Assign, as examples/quickstart does.
package orchestrator
