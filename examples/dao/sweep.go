package main

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/policy"
)

// Results of a removal.
const (
	resultRemoved = "removed"
	resultGone    = "gone already"
	// resultWithContainer is the result of a writable layer removed with its container.
	resultWithContainer = "removed with its container"
)

// sweep carries out rs, made with policy p, in order: containers, images, snapshots. Then
// it runs containerd's garbage collector, which removes the content nothing references any
// more, and checks which blobs are gone. Each removal gets its result.
//
// Whatever changed since the plan was made is kept: a container that started again, an
// image that a new container uses, a snapshot that something new references. Before the
// snapshots, sweep takes stock again and plans with p once more, counting every container
// and image still there as in use: a snapshot goes only if both plans say so. containerd
// protects some of this by itself (it refuses to delete a container with a process, or a
// snapshot with children), but not the writable layer of a running container.
func (cl *cleaner) sweep(ctx context.Context, s *stock, p policy.CleanPolicy, rs []removal) error {
	var users map[string]string        // image record name -> a container that uses it
	var unused, exist map[string]bool  // snapshots that nothing references after the deletions; that exist
	withContainer := map[string]bool{} // writable layers removed with their containers
	for i := range rs {
		r := &rs[i]
		if r.kind == kindSnapshot && unused == nil {
			var err error
			if unused, exist, err = cl.unreferenced(ctx, p); err != nil {
				return err
			}
		}
		switch r.kind {
		case kindContainer:
			if key := cl.removeContainer(ctx, r); key != "" {
				withContainer[key] = true
			}
		case kindImage:
			if users == nil {
				var err error
				if users, err = cl.imageUsers(ctx); err != nil {
					return err
				}
			}
			cl.removeImage(ctx, s, r, users)
		case kindSnapshot:
			switch {
			case !exist[r.id] && withContainer[r.id]:
				r.result = resultWithContainer
			case !exist[r.id]:
				r.result = resultGone
			case !unused[r.id]:
				r.result = "kept: something references it now"
			default:
				cl.removeSnapshot(ctx, r)
			}
		}
		if r.result != "" {
			cl.logf("%s %s: %s", r.kind, r.id, r.result)
		}
	}
	if err := cl.collect(ctx); err != nil {
		return err
	}
	return cl.check(ctx, s, rs)
}

// unreferenced returns the snapshots that p would delete now if every container and image
// that exists were in use, and the snapshots that exist.
func (cl *cleaner) unreferenced(ctx context.Context, p policy.CleanPolicy) (unused, exist map[string]bool, err error) {
	now, err := cl.inventory(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	for i := range now.Containers {
		now.Containers[i].Running = true
	}
	for i := range now.Images {
		now.Images[i].InUse = true
	}
	plan, err := p.Plan(now.Inventory, time.Now())
	if err != nil {
		return nil, nil, err
	}
	unused, exist = map[string]bool{}, map[string]bool{}
	for _, d := range plan.Snapshots {
		unused[d.ID] = true
	}
	for _, sn := range now.Snapshots {
		exist[sn.Key] = true
	}
	return unused, exist, nil
}

// removeContainer removes a stopped container and its writable layer, and returns the
// layer's key when it removed one.
func (cl *cleaner) removeContainer(ctx context.Context, r *removal) (snapshot string) {
	c, err := cl.client.LoadContainer(ctx, r.id)
	if err != nil {
		r.settle(err)
		return ""
	}
	info, err := c.Info(ctx)
	if err != nil {
		r.settle(err)
		return ""
	}
	if task, err := c.Task(ctx, nil); err == nil {
		st, err := task.Status(ctx)
		if err != nil {
			r.settle(err)
			return ""
		}
		if st.Status != client.Stopped {
			r.result = "kept: now " + string(st.Status)
			return ""
		}
		if _, err := task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			r.settle(err)
			return ""
		}
	} else if !errdefs.IsNotFound(err) {
		r.settle(err)
		return ""
	}
	if err := c.Delete(ctx, client.WithSnapshotCleanup); err != nil {
		if errdefs.IsFailedPrecondition(err) {
			r.result = "kept: it has a process again"
			return ""
		}
		r.settle(err)
		return ""
	}
	r.result = resultRemoved
	if info.Snapshotter == cl.snapshotter {
		return info.SnapshotKey
	}
	return ""
}

// imageUsers returns, for each image record some container uses, one of those containers.
func (cl *cleaner) imageUsers(ctx context.Context) (map[string]string, error) {
	list, err := cl.client.ContainerService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	users := map[string]string{}
	for _, c := range list {
		if c.Image != "" {
			users[c.Image] = c.ID
		}
	}
	return users, nil
}

func (cl *cleaner) removeImage(ctx context.Context, s *stock, r *removal, users map[string]string) {
	if c, ok := users[r.record]; ok {
		r.result = "kept: now used by container " + c
		return
	}
	store := cl.client.ImageService()
	want := s.targets[r.record]
	img, err := store.Get(ctx, r.record)
	if err != nil {
		r.settle(err)
		return
	}
	if img.Target.Digest != want.Digest {
		r.result = "kept: it names other content since the plan"
		return
	}
	// DeleteTarget makes the deletion conditional on the target for containerd 2.x; 1.6
	// ignores it, and the check above is what protects a re-tagged image there.
	r.settle(store.Delete(ctx, r.record, images.DeleteTarget(&want)))
}

func (cl *cleaner) removeSnapshot(ctx context.Context, r *removal) {
	err := cl.client.SnapshotService(cl.snapshotter).Remove(ctx, r.id)
	if errdefs.IsFailedPrecondition(err) {
		r.result = "kept: something new stands on it"
		return
	}
	r.settle(err)
}

// settle sets the result of r from the error of its removal.
func (r *removal) settle(err error) {
	switch {
	case err == nil:
		r.result = resultRemoved
	case errGone(err):
		r.result = resultGone
	default:
		r.result, r.failed = "failed: "+err.Error(), true
	}
}

// collect runs containerd's garbage collector and waits for it: deleting a lease
// synchronously does that, in containerd 1.6 as in 2.x. It removes the content and the
// snapshots nothing references, in every namespace, as containerd would on its own later.
func (cl *cleaner) collect(ctx context.Context) error {
	lm := cl.client.LeasesService()
	l, err := lm.Create(ctx, leases.WithRandomID())
	if err != nil {
		return fmt.Errorf("garbage collection: create lease: %w", err)
	}
	if err := lm.Delete(ctx, l, leases.SynchronousDelete); err != nil {
		return fmt.Errorf("garbage collection: %w", err)
	}
	cl.logf("containerd's garbage collector ran")
	return nil
}

// check sets the results of the content removals and the bytes of every removal from what
// is really gone.
func (cl *cleaner) check(ctx context.Context, s *stock, rs []removal) error {
	left := map[digest.Digest]bool{}
	err := cl.client.ContentStore().Walk(ctx, func(info content.Info) error {
		left[info.Digest] = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("list content: %w", err)
	}
	for i := range rs {
		r := &rs[i]
		switch r.kind {
		case kindImage, kindContent:
			r.bytes = 0
			for _, d := range r.blobs {
				if !left[d] {
					r.bytes += s.blobBytes(d)
				}
			}
			if r.kind == kindContent {
				r.result = resultRemoved
				if left[r.blobs[0]] {
					r.result = "kept: containerd still references it"
				}
			}
		case kindContainer, kindSnapshot:
			if !r.gone() {
				r.bytes = 0
			}
		}
	}
	return nil
}

// gone reports whether r's thing is not there any more.
func (r *removal) gone() bool {
	return r.result == resultRemoved || r.result == resultGone || r.result == resultWithContainer
}
