package orchestrator

// SetBoltAfterCommit makes the store call f after each bbolt commit of a write, and take
// its error for the commit's (a commit that failed after it reached the file), until
// restore is called. It must not be called while the store writes.
func SetBoltAfterCommit(s *BoltStore, f func() error) (restore func()) {
	old := s.afterCommit
	s.afterCommit = f
	return func() { s.afterCommit = old }
}

// HoldEtcdWatch stops the store's etcd watch until release is called, as a partition
// from etcd would: its copy falls behind.
func HoldEtcdWatch(s *EtcdStore) (release func()) {
	s.holdMu.Lock()
	hold := make(chan struct{})
	s.hold = hold
	if s.watchCancel != nil {
		s.watchCancel()
	}
	s.holdMu.Unlock()
	return func() {
		s.holdMu.Lock()
		s.hold = nil
		s.holdMu.Unlock()
		close(hold)
	}
}
