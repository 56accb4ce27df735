package orchestrator

// SetBoltAfterCommit makes the store call f after each bbolt commit of a write, and take
// its error for the commit's (a commit that failed after it reached the file), until
// restore is called. It must not be called while the store writes.
func SetBoltAfterCommit(s *BoltStore, f func() error) (restore func()) {
	old := s.afterCommit
	s.afterCommit = f
	return func() { s.afterCommit = old }
}
