// Package ctxio makes readers that honour a context, for the long copies of the registry
// packages that have no context of their own to pass (io.Copy into a tar stream or a file).
package ctxio
