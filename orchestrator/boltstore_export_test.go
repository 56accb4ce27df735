package orchestrator

// SetBoltAfterCommit makes every BoltStore call f after each bbolt commit of a write, and
// take its error for the commit's (a commit that failed after it reached the file), until
// restore is called.
func SetBoltAfterCommit(f func() error) (restore func()) {
	old := boltAfterCommit
	boltAfterCommit = f
	return func() { boltAfterCommit = old }
}
