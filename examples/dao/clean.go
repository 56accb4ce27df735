package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/policy"
)

// cleanOptions are the flags of dao clean.
type cleanOptions struct {
	all         bool
	dryRun      bool
	force       bool
	until       string
	filters     []string
	snapshotter string
	root        string
	format      outputFormat
}

func (o *cleanOptions) flags(fs *pflag.FlagSet) {
	fs.BoolVarP(&o.all, "all", "a", false, "remove every image no container uses, not only dangling ones (docker system prune -a)")
	fs.BoolVarP(&o.force, "force", "f", false, "do not ask for confirmation")
	fs.BoolVar(&o.dryRun, "dry-run", false, "list what would be removed, why, and the bytes it would free; remove nothing")
	fs.StringVar(&o.until, "until", "", "only remove containers and images created before `WHEN`: a duration ago (24h) or a time (2026-01-02T15:04:05Z, 2026-01-02, Unix seconds); the same as --filter until=WHEN")
	fs.StringArrayVar(&o.filters, "filter", nil, "only remove containers and images that match `FILTER`: until=WHEN (as --until), label=KEY[=VALUE] has the label, label!=KEY[=VALUE] has not; repeatable, all must match")
	fs.StringVar(&o.snapshotter, "snapshotter", "overlayfs", "the containerd `NAME` of the snapshotter whose snapshots are cleaned")
	fs.StringVar(&o.root, "root", "", "a `DIR` on the file system of containerd's data, for disk usage (default: the snapshotter's, as containerd says)")
	formatFlags(fs, &o.format)
}

func cleanCommand() *command {
	var o cleanOptions
	c := &command{
		name:    "clean",
		summary: "remove stopped containers, unused images, snapshots and content",
		flags:   o.flags,
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

It lists what it would remove and asks "Are you sure you want to continue? [y/N]" first,
as docker system prune does, unless -f is given. As docker does, it reads the answer from
stdin, a terminal or not (echo y | dao clean): an answer other than y or yes, or none,
removes nothing and exits with status 1.

With -o json (which needs -f or --dry-run, since it asks nothing), each removal is one
line of JSON with these fields:
  Kind    container, image, snapshot or content
  Name    its ID, name, key or digest, in full
  Bytes   what removing it frees on disk (0 for a container)
  Reason  why the policy removes it
  Result  removed, gone already, kept: ..., or failed: ... (not with --dry-run)
`,
	}
	c.run = func(ctx context.Context, g *globals, args []string) int {
		if err := noArguments(args); err != nil {
			return usageError(g.stderr, c.name, err.Error())
		}
		p, err := o.policy(time.Now())
		if err != nil {
			return usageError(g.stderr, c.name, err.Error())
		}
		if o.format == "json" && !o.force && !o.dryRun {
			return usageError(g.stderr, c.name, "-o json asks no confirmation: give -f (or --dry-run) too")
		}
		cl, err := connect(ctx, g)
		if err != nil {
			return fail(g, c.name, err)
		}
		defer cl.Close()
		cc := &cleaner{client: cl, snapshotter: o.snapshotter, root: o.root, logf: g.logf}
		if err := clean(ctx, g, cc, p, o); err != nil {
			return fail(g, c.name, err)
		}
		return exitOK
	}
	return c
}

// policy returns the cleaning policy the options ask for, at now. Its errors are usage
// errors.
func (o *cleanOptions) policy(now time.Time) (policy.CleanPolicy, error) {
	p := policy.CleanPolicy{Mode: policy.PruneDangling}
	if o.all {
		p.Mode = policy.PruneAll
	}
	p.Pinned = append(policy.DefaultCleanPolicy().Pinned, labelGCRoot, labelHeld, edge.LabelNetNS)
	until, what := o.until, "--until"
	for _, f := range o.filters {
		v, ok := strings.CutPrefix(f, "until=")
		if !ok {
			p.Labels = append(p.Labels, f)
			continue
		}
		if until != "" {
			return p, fmt.Errorf("--filter %q: only one until, as docker takes it (%s %s is given)", f, what, until)
		}
		until, what = v, "--filter until="
	}
	if until != "" {
		d, err := parseUntil(until, now)
		if err != nil {
			if what != "--until" {
				err = errors.New(strings.Replace(err.Error(), "--until ", "--filter until=", 1))
			}
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

// parseUntil reads --until (and --filter until=) as docker reads until=: a duration before
// now ("24h", "90m"), or a time: RFC 3339 (2006-01-02T15:04:05Z, with or without a
// fraction of a second); 2006-01-02T15:04:05, 2006-01-02T15:04, 2006-01-02T15 or 2006-01-02,
// each with a zone (Z, +02:00) or else in local time; or Unix seconds, with or without a
// fraction (1767225600.5). It returns how long before now that is.
func parseUntil(s string, now time.Time) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return 0, fmt.Errorf("--until %q: a negative duration", s)
		}
		return d, nil
	}
	t, ok := parseTimestamp(s)
	if !ok {
		return 0, fmt.Errorf("--until %q: want a duration (24h) or a time (2006-01-02T15:04:05Z, 2006-01-02, Unix seconds)", s)
	}
	if !t.Before(now) {
		return 0, fmt.Errorf("--until %q: that is not in the past", s)
	}
	return now.Sub(t), nil
}

// parseTimestamp reads the times docker's until= takes.
func parseTimestamp(s string) (time.Time, bool) {
	for _, layout := range []string{
		time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02T15Z07:00", "2006-01-02Z07:00",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	for _, layout := range []string{
		"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02T15", time.DateOnly,
	} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, true
		}
	}
	secs, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || len(frac) > 9 || strings.Trim(frac, "0123456789") != "" {
		return time.Time{}, false
	}
	var nsec int64
	if frac != "" {
		nsec, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	}
	return time.Unix(sec, nsec), true
}

// clean takes stock, plans with p, and prints the plan (--dry-run) or, once confirmed,
// carries it out.
func clean(ctx context.Context, g *globals, cl *cleaner, p policy.CleanPolicy, o cleanOptions) error {
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
	if o.format == "json" {
		if !o.dryRun {
			if err := cl.sweep(ctx, s, p, rs); err != nil {
				return err
			}
		}
		for _, r := range rs {
			if err := writeJSON(w, newRemovalEntry(r, !o.dryRun)); err != nil {
				return err
			}
		}
		return failures(rs)
	}
	fmt.Fprintf(w, "%s %s, snapshotter %s%s\n", paint(g.color, bold, "Namespace"), g.namespace, cl.snapshotter, diskNote(s))
	if len(rs) == 0 {
		fmt.Fprintln(w, "Nothing to remove.")
		return nil
	}
	if o.dryRun || !o.force {
		printRemovals(w, g.color, rs, false)
		fmt.Fprintln(w, paint(g.color, yellow, "Would free "+formatBytes(total(rs, false))+": "+counts(rs, false)+"."))
	}
	if o.dryRun {
		fmt.Fprintln(w, "Nothing was removed (--dry-run).")
		return nil
	}
	if !o.force {
		if err := confirm(ctx, g); err != nil {
			return err
		}
	}
	if err := cl.sweep(ctx, s, p, rs); err != nil {
		return err
	}
	printRemovals(w, g.color, rs, true)
	fmt.Fprintln(w, paint(g.color, green, "Freed "+formatBytes(total(rs, true))+": removed "+counts(rs, true)+"."))
	if s.diskPath != "" {
		if d, err := diskUsage(s.diskPath); err == nil {
			fmt.Fprintf(w, "Disk %s.\n", diskText(d))
		}
	}
	return failures(rs)
}

// failures is an error when some of rs failed.
func failures(rs []removal) error {
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

// errNotConfirmed is what dao clean says when the answer to its question was not yes.
var errNotConfirmed = errors.New("cancelled: nothing was removed")

// confirm asks whether to go on, as docker system prune does: on stdout, with the answer
// read from stdin, a terminal or not. Only y or yes (in any case) goes on; another answer,
// the end of stdin, or an interrupt while it waits is errNotConfirmed.
func confirm(ctx context.Context, g *globals) error {
	fmt.Fprint(g.stdout, "Are you sure you want to continue? [y/N] ")
	answer := make(chan string, 1)
	go func() { // it ends when stdin gives a line or ends, which may be after dao exits
		line, _ := bufio.NewReader(g.stdin).ReadString('\n')
		answer <- strings.TrimSpace(line)
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(g.stdout)
		return errNotConfirmed
	case a := <-answer:
		if strings.EqualFold(a, "y") || strings.EqualFold(a, "yes") {
			return nil
		}
		if f, ok := g.stdin.(*os.File); a == "" && (!ok || !isTerminal(f)) {
			fmt.Fprintln(g.stdout)
			return fmt.Errorf("%w (no answer on stdin: give -f to clean without asking)", errNotConfirmed)
		}
		return errNotConfirmed
	}
}

// removalEntry is one removal of dao clean -o json. Its field names do not change.
type removalEntry struct {
	Kind   string `json:"Kind"`
	Name   string `json:"Name"`
	Bytes  int64  `json:"Bytes"`
	Reason string `json:"Reason"`
	Result string `json:"Result,omitempty"`
}

func newRemovalEntry(r removal, done bool) removalEntry {
	e := removalEntry{Kind: r.kind, Name: r.id, Bytes: r.bytes, Reason: r.why}
	if done {
		e.Result = r.result
	}
	return e
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
			size = formatBytes(r.bytes)
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
	return fmt.Sprintf("%d%% used of %s", d.Used*100/d.Capacity, formatBytes(d.Capacity))
}
