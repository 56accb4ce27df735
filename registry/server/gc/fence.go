package gc

import (
	"hash/maphash"
	"sync"
	"time"
)

// Fence coordinates a collector with the manifest puts of the servers of its store, in one
// process: a put enters the fence of its repository for as long as it checks what the
// manifest references and stores it. A collector learns from it when the oldest put in
// progress started, and holds a repository's puts back while it unlinks the repository's
// untagged manifests. The zero value is not usable; NewFence makes one. It is safe for
// simultaneous use.
type Fence struct {
	now   func() time.Time
	seed  maphash.Seed
	locks [64]sync.RWMutex

	mu       sync.Mutex
	next     uint64
	inflight map[uint64]time.Time
}

// NewFence returns a Fence that reads the time from time.Now.
func NewFence() *Fence {
	return &Fence{now: time.Now, seed: maphash.MakeSeed(), inflight: map[uint64]time.Time{}}
}

func (f *Fence) lock(repo string) *sync.RWMutex {
	return &f.locks[maphash.String(f.seed, repo)%uint64(len(f.locks))]
}

// Enter marks the start of a manifest put to repo, before it checks anything; the put
// calls the function returned once it has stored the manifest (or failed). Enter waits
// while a collector unlinks untagged manifests of repo (or of a repository that shares
// its lock).
func (f *Fence) Enter(repo string) (leave func()) {
	l := f.lock(repo)
	l.RLock()
	f.mu.Lock()
	id := f.next
	f.next++
	f.inflight[id] = f.now()
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.inflight, id)
			f.mu.Unlock()
			l.RUnlock()
		})
	}
}

// Oldest returns the start of the oldest put in progress, and false if there is none.
func (f *Fence) Oldest() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var oldest time.Time
	for _, t := range f.inflight {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	return oldest, !oldest.IsZero()
}

// exclude waits for the puts in progress to repo to end and holds new ones back until the
// function returned is called.
func (f *Fence) exclude(repo string) (release func()) {
	l := f.lock(repo)
	l.Lock()
	return l.Unlock
}
