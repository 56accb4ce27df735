package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/policy"
)

// cleanOptions are the flags of dao clean.
type cleanOptions struct {
	all         bool
	dryRun      bool
	until       string
	filters     repeated
	snapshotter string
	root        string
}

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func (o *cleanOptions) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("clean", flag.ContinueOnError)
	fs.BoolVar(&o.all, "all", false, "remove every image no container uses, not only dangling ones (docker system prune -a)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "list what would be removed, why, and the bytes it would free; remove nothing")
	fs.StringVar(&o.until, "until", "", "only remove containers and images created before `WHEN`: a duration ago (24h) or a time (2026-01-02T15:04:05Z, 2026-01-02)")
	fs.Var(&o.filters, "filter", "only remove containers and images that match `FILTER`: label=KEY[=VALUE] has the label, label!=KEY[=VALUE] has not; repeatable, all must match")
	fs.StringVar(&o.snapshotter, "snapshotter", "overlayfs", "the containerd `NAME` of the snapshotter whose snapshots are cleaned")
	fs.StringVar(&o.root, "root", "", "a `DIR` on the file system of containerd's data, for disk usage (default: the snapshotter's, as containerd says)")
	return fs
}

func cleanCommand() *command {
	c := &command{
		name:    "clean",
		summary: "remove stopped containers, unused images, snapshots and content",
		flags:   func() *flag.FlagSet { return new(cleanOptions).flags() },
		usage: `Usage: dao clean [options]

Removes, in the namespace, like docker system prune:
  - stopped containers, with their writable layers;
  - dangling images (named by their digest alone), or with --all every image no remaining
    container uses;
  - snapshots nothing references;
  - content nothing references (containerd's garbage collector removes it).
It never removes a running or paused container, or the image, snapshots and content one
uses; nor what is pinned (labels io.opendao.pinned, io.cri-containerd.pinned=pinned,
containerd.io/gc.root), held by a lease (a pull or an unpack under way), or attached to a
Dao network (label io.opendao.netns: remove those through their edge runtime).
`,
	}
	c.run = func(ctx context.Context, g *globals, args []string) int {
		var o cleanOptions
		if status, done := parseFlags(g, c, o.flags(), args); done {
			return status
		}
		p, err := o.policy(time.Now())
		if err != nil {
			return usageError(g.stderr, c.name, err.Error())
		}
		cl, err := connect(ctx, g)
		if err != nil {
			return fail(g, c.name, err)
		}
		defer cl.Close()
		cc := &cleaner{client: cl, snapshotter: o.snapshotter, root: o.root, logf: g.logf}
		if err := clean(ctx, g, cc, p, o.dryRun); err != nil {
			return fail(g, c.name, err)
		}
		return exitOK
	}
	return c
}

// policy returns the cleaning policy the options ask for, at now. Its errors are usage
// errors.
func (o *cleanOptions) policy(now time.Time) (policy.CleanPolicy, error) {
	p := policy.CleanPolicy{Mode: policy.PruneDangling, Labels: o.filters}
	if o.all {
		p.Mode = policy.PruneAll
	}
	p.Pinned = append(policy.DefaultCleanPolicy().Pinned, labelGCRoot, labelHeld, edge.LabelNetNS)
	if o.until != "" {
		d, err := parseUntil(o.until, now)
		if err != nil {
			return p, err
		}
		p.Until = d
	}
	// Plan checks the filters' syntax; an empty inventory makes that all it does.
	if _, err := p.Plan(policy.Inventory{}, now); err != nil {
		var se *policy.SyntaxError
		if errors.As(err, &se) {
			return p, fmt.Errorf("--filter %q: %s", se.Text, se.Msg)
		}
		return p, err
	}
	if o.snapshotter == "" {
		return p, errors.New("--snapshotter needs a name")
	}
	return p, nil
}

// parseUntil reads --until: a duration before now ("24h", "90m"), or a time (RFC 3339, a
// date, or Unix seconds). It returns how long before now that is.
func parseUntil(s string, now time.Time) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return 0, fmt.Errorf("--until %q: a negative duration", s)
		}
		return d, nil
	}
	var t time.Time
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", time.DateOnly} {
		var err error
		if t, err = time.ParseInLocation(layout, s, time.Local); err == nil {
			break
		}
	}
	if t.IsZero() {
		secs, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("--until %q: want a duration (24h) or a time (2006-01-02T15:04:05Z, 2006-01-02, Unix seconds)", s)
		}
		t = time.Unix(secs, 0)
	}
	if !t.Before(now) {
		return 0, fmt.Errorf("--until %q: that is not in the past", s)
	}
	return now.Sub(t), nil
}

// clean takes stock, plans with p, and prints the plan (dryRun) or carries it out.
func clean(ctx context.Context, g *globals, cl *cleaner, p policy.CleanPolicy, dryRun bool) error {
	began := time.Now()
	s, err := cl.inventory(ctx, true)
	if err != nil {
		return err
	}
	plan, err := p.Plan(s.Inventory, time.Now())
	if err != nil {
		return err
	}
	rs := s.removals(ctx, cl.client.ContentStore(), plan)
	g.logf("planned %d removals in %s: %s", len(rs), time.Since(began).Round(time.Millisecond), plan.Reason)
	w := g.stdout
	fmt.Fprintf(w, "%s %s, snapshotter %s%s\n", paint(g.color, bold, "Namespace"), g.namespace, cl.snapshotter, diskNote(s))
	if len(rs) == 0 {
		fmt.Fprintln(w, "Nothing to remove.")
		return nil
	}
	if dryRun {
		printRemovals(w, g.color, rs, false)
		fmt.Fprintln(w, paint(g.color, yellow, "Would free "+dao.FormatBytes(total(rs, false))+": "+counts(rs, false)+"."))
		fmt.Fprintln(w, "Nothing was removed (--dry-run).")
		return nil
	}
	if err := cl.sweep(ctx, s, p, rs); err != nil {
		return err
	}
	printRemovals(w, g.color, rs, true)
	fmt.Fprintln(w, paint(g.color, green, "Freed "+dao.FormatBytes(total(rs, true))+": removed "+counts(rs, true)+"."))
	if s.diskPath != "" {
		if d, err := diskUsage(s.diskPath); err == nil {
			fmt.Fprintf(w, "Disk %s.\n", diskText(d))
		}
	}
	failed := 0
	for _, r := range rs {
		if r.failed {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d removals failed", failed, len(rs))
	}
	return nil
}

// printRemovals writes rs as a table; done adds each one's result.
func printRemovals(w io.Writer, color bool, rs []removal, done bool) {
	t := &table{}
	last := "WHY"
	if done {
		last = "RESULT"
	}
	t.row(bold, "WHAT", "NAME", "SIZE", last)
	for _, r := range rs {
		size := "-"
		if r.kind != kindContainer {
			size = dao.FormatBytes(r.bytes)
		}
		colour, text := "", r.why
		if done {
			text = r.result
			switch {
			case r.failed:
				colour = red
			case !r.gone():
				colour = dim
			}
		}
		t.row(colour, r.kind, shortID(r.id), size, fullDigest.ReplaceAllStringFunc(text, shortID))
	}
	t.write(w, color, "")
}

// fullDigest matches the digests that printRemovals shortens in reasons.
var fullDigest = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// total is the bytes rs frees: every planned removal, or (done) those that are gone.
func total(rs []removal, done bool) int64 {
	var n int64
	for _, r := range rs {
		if !done || r.gone() {
			n += r.bytes
		}
	}
	return n
}

// counts says how many of each kind rs removes: "1 container, 2 images, 3 snapshots".
func counts(rs []removal, done bool) string {
	n := map[string]int{}
	for _, r := range rs {
		if !done || r.gone() {
			n[r.kind]++
		}
	}
	var parts []string
	for _, k := range []struct{ kind, one, many string }{
		{kindContainer, "container", "containers"},
		{kindImage, "image", "images"},
		{kindSnapshot, "snapshot", "snapshots"},
		{kindContent, "blob", "blobs"},
	} {
		if n[k.kind] > 0 {
			parts = append(parts, plural(n[k.kind], k.one, k.many))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

func diskNote(s *stock) string {
	if s.diskPath == "" {
		return ""
	}
	return ", disk " + diskText(s.Disk)
}

func diskText(d policy.Disk) string {
	if d.Capacity <= 0 {
		return "usage unknown"
	}
	return fmt.Sprintf("%d%% used of %s", d.Used*100/d.Capacity, dao.FormatBytes(d.Capacity))
}
