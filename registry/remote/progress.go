package remote

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opendao/dao/registry/name"
)

// Progress reports how far the transfer of one blob has come, for a command line to draw a
// bar per blob. See WithProgress.
type Progress struct {
	// Action is "fetch", "push" or "mount".
	Action string
	// Repository is the repository's full name, such as "127.0.0.1:5000/app".
	Repository string
	// Descriptor is the blob's.
	Descriptor ocispec.Descriptor
	// Done is how many bytes are done: for a fetch, received and verified in order; for a
	// push, sent.
	Done int64
	// Total is the blob's size.
	Total int64
	// Complete is true in the last report of a blob that succeeded: fetched and verified,
	// pushed and committed, or already in the registry.
	Complete bool
}

// progressStep is how many bytes pass between two reports of one blob.
const progressStep = 256 << 10

// reporter reports the progress of one blob, at most every progressStep bytes.
type reporter struct {
	f    func(Progress)
	p    Progress
	last int64
}

func (c *Client) reporter(action string, repo name.Reference, desc ocispec.Descriptor) *reporter {
	return &reporter{f: c.opts.progress, p: Progress{Action: action, Repository: repo.Name(), Descriptor: desc, Total: desc.Size}, last: -1}
}

// update reports done bytes if enough have passed since the last report.
func (r *reporter) update(done int64) {
	if r.f == nil || (done-r.last < progressStep && done != r.p.Total && r.last >= 0) {
		return
	}
	r.last = done
	p := r.p
	p.Done = done
	r.f(p)
}

// complete reports the blob complete.
func (r *reporter) complete() {
	if r.f == nil {
		return
	}
	p := r.p
	p.Done, p.Complete = p.Total, true
	r.f(p)
}
