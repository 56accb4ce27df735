package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"

	"github.com/opendao/dao/registry/server/storage"
)

// WithMaxUploads bounds the upload sessions open at once: perRepository in one
// repository, total in all (0 means no bound of that kind). A POST that would open one
// more is answered 429 TOOMANYREQUESTS, so that a client cannot fill the disk with
// sessions it never ends. Sessions are counted from those this Server opened; those ended
// by a commit, a DELETE, a collection (gc.WithUploadTTL) or an error are no longer
// counted. The default is no bound; neither may be negative.
func WithMaxUploads(perRepository, total int) Option {
	return func(o *options) error {
		if perRepository < 0 || total < 0 {
			return fmt.Errorf("%w: WithMaxUploads: %d per repository, %d in all: must not be negative", ErrInvalidOption, perRepository, total)
		}
		if perRepository == 0 && total == 0 {
			o.s.sessions = nil
			return nil
		}
		o.s.sessions = &sessions{perRepo: perRepository, total: total, open: map[string]string{}, byRepo: map[string]int{}}
		return nil
	}
}

// sessions counts the upload sessions a Server opened and has not seen end.
type sessions struct {
	perRepo, total int

	mu     sync.Mutex
	open   map[string]string // id → repository
	byRepo map[string]int    // sessions open or being opened, by repository
	count  int               // in all
}

// newUpload opens a session of repo, unless the bounds are reached. The store is not
// called under the lock: a place is reserved, then filled or given back.
func (s *Server) newUpload(ctx context.Context, repo string) (storage.Upload, error) {
	if s.sessions == nil {
		return s.store.NewUpload(ctx, repo)
	}
	ss := s.sessions
	ss.mu.Lock()
	if ss.full(repo) {
		open := maps.Clone(ss.open)
		ss.mu.Unlock()
		// Forget the sessions that ended without this Server seeing it, then look again.
		var gone []string
		for id, r := range open {
			if _, err := s.store.Upload(ctx, r, id); errors.Is(err, storage.ErrUploadUnknown) {
				gone = append(gone, id)
			}
		}
		ss.mu.Lock()
		for _, id := range gone {
			ss.forgetLocked(id)
		}
		if ss.full(repo) {
			n, all := ss.byRepo[repo], ss.count
			ss.mu.Unlock()
			return nil, newError(http.StatusTooManyRequests, codeTooManyRequests,
				"too many upload sessions open (%d in %s, %d in all); finish or cancel one", n, repo, all).
				withHeader("Retry-After", "10")
		}
	}
	ss.byRepo[repo]++
	ss.count++
	ss.mu.Unlock()
	up, err := s.store.NewUpload(ctx, repo)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if err != nil {
		ss.release(repo)
		return nil, err
	}
	ss.open[up.ID()] = repo
	return up, nil
}

func (ss *sessions) full(repo string) bool {
	return ss.perRepo > 0 && ss.byRepo[repo] >= ss.perRepo || ss.total > 0 && ss.count >= ss.total
}

// ended forgets a session that was committed or cancelled.
func (s *Server) ended(id string) {
	if s.sessions == nil {
		return
	}
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	s.sessions.forgetLocked(id)
}

func (ss *sessions) forgetLocked(id string) {
	repo, ok := ss.open[id]
	if !ok {
		return
	}
	delete(ss.open, id)
	ss.release(repo)
}

// release gives back a place of repo.
func (ss *sessions) release(repo string) {
	ss.count--
	if ss.byRepo[repo]--; ss.byRepo[repo] <= 0 {
		delete(ss.byRepo, repo)
	}
}
