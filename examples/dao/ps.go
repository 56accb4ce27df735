package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/spf13/pflag"

	"github.com/opendao/dao/edge"
)

// psOptions are the flags of dao ps.
type psOptions struct {
	all    bool
	quiet  bool
	format outputFormat
}

func psCommand() *command {
	var o psOptions
	c := &command{
		name:    "ps",
		summary: "list containers",
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVarP(&o.all, "all", "a", false, "also list stopped containers; without it, only running, paused and restarting ones")
			fs.BoolVarP(&o.quiet, "quiet", "q", false, "print only the containers' IDs, one a line")
			formatFlags(fs, &o.format)
		},
		usage: `Usage: dao ps [options]

Lists the containers of the namespace with their state, image and age. A container that
exited and that its edge agent will start again after a backoff is listed as restarting,
with its last exit and its next attempt.

With -o json, each container is one line of JSON with these fields, as docker ps
--format json names them where docker has them:
  ID           the container's ID
  Image        its image's name ("" for none)
  State        running, paused, created, stopped, restarting or unknown
  Status       the state in words: "pid 4242", "exited (0) 5m ago", ...
  CreatedAt    when it was created (RFC 3339)
  Pid          its process's ID, when it has one
  ExitCode     its last exit status, when its process exited
  ExitedAt     when it exited (RFC 3339), when known
  NextAttempt  when its edge agent starts it again (RFC 3339), when restarting
  Labels       its labels
Fields with no value are left out, but ID, Image, State and Status.
`,
	}
	c.run = func(ctx context.Context, g *globals, args []string) int {
		if err := noArguments(args); err != nil {
			return usageError(g.stderr, c.name, err.Error())
		}
		cl, err := connect(ctx, g)
		if err != nil {
			return fail(g, c.name, err)
		}
		defer cl.Close()
		if err := ps(ctx, g, cl, o); err != nil {
			return fail(g, c.name, err)
		}
		return exitOK
	}
	return c
}

// psEntry is one container of dao ps -o json. Its field names do not change.
type psEntry struct {
	ID          string            `json:"ID"`
	Image       string            `json:"Image"`
	State       string            `json:"State"`
	Status      string            `json:"Status"`
	CreatedAt   *time.Time        `json:"CreatedAt,omitempty"`
	Pid         uint32            `json:"Pid,omitempty"`
	ExitCode    *uint32           `json:"ExitCode,omitempty"`
	ExitedAt    *time.Time        `json:"ExitedAt,omitempty"`
	NextAttempt *time.Time        `json:"NextAttempt,omitempty"`
	Labels      map[string]string `json:"Labels,omitempty"`
}

func ps(ctx context.Context, g *globals, c *client.Client, o psOptions) error {
	list, err := c.ContainerService().List(ctx)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	procs, err := processes(ctx, c)
	if err != nil {
		return err
	}
	slices.SortFunc(list, func(a, b containers.Container) int { return strings.Compare(a.ID, b.ID) })
	now := time.Now()
	t := &table{}
	t.row(bold, "CONTAINER", "IMAGE", "STATE", "CREATED", "STATUS")
	shown := 0
	for _, ct := range list {
		p := procs[ct.ID]
		state, status := describe(p, ct.Labels, now)
		if !o.all && state != "running" && state != "paused" && state != "restarting" {
			continue
		}
		shown++
		switch {
		case o.quiet:
			fmt.Fprintln(g.stdout, ct.ID)
		case o.format == "json":
			if err := writeJSON(g.stdout, newPSEntry(ct, p, state, status)); err != nil {
				return err
			}
		default:
			t.row("", ct.ID, orDash(ct.Image), state, age(now, ct.CreatedAt), status)
		}
	}
	if o.quiet || o.format == "json" {
		return nil
	}
	if shown == 0 {
		if o.all || len(list) == 0 {
			fmt.Fprintf(g.stdout, "No containers in namespace %s.\n", g.namespace)
		} else {
			fmt.Fprintf(g.stdout, "No running containers in namespace %s (%s stopped: dao ps --all).\n",
				g.namespace, plural(len(list), "container", "containers"))
		}
		return nil
	}
	t.write(g.stdout, g.color, "")
	return nil
}

func newPSEntry(ct containers.Container, p *task.Process, state, status string) psEntry {
	e := psEntry{ID: ct.ID, Image: ct.Image, State: state, Status: status, Labels: ct.Labels}
	if !ct.CreatedAt.IsZero() {
		t := ct.CreatedAt.UTC()
		e.CreatedAt = &t
	}
	if p != nil {
		if live(p) {
			e.Pid = p.Pid
		} else {
			code := p.ExitStatus
			e.ExitCode = &code
		}
		if t := exitTime(p); !t.IsZero() {
			t = t.UTC()
			e.ExitedAt = &t
		}
	}
	if next, err := time.Parse(time.RFC3339Nano, ct.Labels[edge.LabelNextRestart]); err == nil && state == "restarting" {
		next = next.UTC()
		e.NextAttempt = &next
	}
	return e
}

// processes returns the main process of each container that has a task, by container ID.
func processes(ctx context.Context, c *client.Client) (map[string]*task.Process, error) {
	resp, err := c.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	out := map[string]*task.Process{}
	for _, p := range resp.Tasks {
		id := p.ContainerID
		if id == "" {
			id = p.ID // containerd 1.6 leaves ContainerID empty; a task's ID is its container's
		}
		out[id] = p
	}
	return out, nil
}

// describe returns a container's state in one word and its status in a few: "running",
// "pid 4242"; "stopped", "exited (0) 5m ago"; "created", "never started"; "restarting",
// "exited (1) 3s ago, next attempt in 2s" for a container whose edge agent will start it
// again (edge.LabelNextRestart, set while it waits).
func describe(p *task.Process, labels map[string]string, now time.Time) (state, status string) {
	if next, err := time.Parse(time.RFC3339Nano, labels[edge.LabelNextRestart]); err == nil && !live(p) {
		status := "no process"
		if p != nil {
			status = fmt.Sprintf("exited (%d)", p.ExitStatus)
			if t := exitTime(p); !t.IsZero() {
				status += " " + age(now, t) + " ago"
			}
		}
		switch d := next.Sub(now); {
		case d <= 0:
			status += ", next attempt due"
		case d < time.Second:
			status += ", next attempt in <1s"
		default:
			status += ", next attempt in " + age(now, now.Add(-d))
		}
		return "restarting", status
	}
	if p == nil {
		return "stopped", "no process"
	}
	switch p.Status {
	case task.Status_RUNNING:
		return "running", fmt.Sprintf("pid %d", p.Pid)
	case task.Status_PAUSED, task.Status_PAUSING:
		return "paused", fmt.Sprintf("pid %d", p.Pid)
	case task.Status_CREATED:
		return "created", "process created, not started"
	case task.Status_STOPPED:
		s := fmt.Sprintf("exited (%d)", p.ExitStatus)
		if t := exitTime(p); !t.IsZero() {
			s += " " + age(now, t) + " ago"
		}
		return "stopped", s
	}
	return "unknown", "state unknown"
}

// exitTime returns when p exited, or the zero time.
func exitTime(p *task.Process) time.Time {
	if p == nil || p.ExitedAt == nil || !p.ExitedAt.IsValid() || p.ExitedAt.Seconds <= 0 {
		return time.Time{}
	}
	return p.ExitedAt.AsTime()
}

// live reports whether the container of p has a process that exists: anything but stopped.
// An unknown state counts as live, so that clean leaves it alone.
func live(p *task.Process) bool {
	return p != nil && p.Status != task.Status_STOPPED
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
