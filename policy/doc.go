// Package policy holds the rules a control plane is made of, as plain Go functions and small
// values that compose and need no cluster to test: when a container restarts, where a task
// may run, what a service may ask for, and what a node may delete.
//
// It does no I/O and imports only the root package dao and small libraries.
package policy
