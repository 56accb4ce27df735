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

// SlowEtcdLoad makes the store's reads of the whole store take page keys a request and
// call each after every request, as a large store read over a slow link would.
func SlowEtcdLoad(s *EtcdStore, page int64, each func()) {
	s.loadPage, s.onLoadPage = page, each
}

// ReloadEtcdStore reads the whole store again, as the store does when its watch fell
// behind etcd's compaction.
func ReloadEtcdStore(s *EtcdStore) error { return s.reload() }
