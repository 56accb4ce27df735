// Package spool holds blobs while they are fetched, in memory or in unlinked temporary
// files, for the registry client's downloads and the pull's taps.
package spool
