package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

// adminOptions are the flags of every command that calls a control plane's admin API.
type adminOptions struct {
	stateDir string
}

func (o *adminOptions) flags(fs *pflag.FlagSet) {
	fs.StringVar(&o.stateDir, "state-dir", "", "the `DIR` the control plane (or one of its replicas) was started with (--state-dir), where its admin socket is; required")
}

// client returns a client of the control plane's admin API. Its error is a usage error.
func (o *adminOptions) client() (*adminClient, error) {
	if o.stateDir == "" {
		return nil, errors.New("--state-dir is required: the control plane's state directory, where its admin socket is")
	}
	return newAdminClient(o.stateDir)
}

const adminHelp = `It calls the control plane through the admin socket in its state directory
(DIR/admin.sock, mode 0600): run it on the control plane's machine as the user who runs
the control plane, or root. With replicas (--etcd), any replica's will do.
`

func nodeCommand() *command {
	return &command{
		name:    "node",
		summary: "list and remove the nodes of a dao control-plane",
		usage: `Usage: dao node COMMAND --state-dir DIR [options]

Commands:
  ls    list the nodes of the cluster
  rm    drain nodes and remove them from the cluster for good

` + adminHelp,
		subcommands: []*command{nodeLsCommand(), nodeRmCommand()},
	}
}

func nodeLsCommand() *command {
	var o adminOptions
	var format outputFormat
	c := &command{
		name:    "ls",
		aliases: []string{"list"},
		summary: "list the nodes of the cluster",
		flags: func(fs *pflag.FlagSet) {
			o.flags(fs)
			formatFlags(fs, &format)
		},
		usage: `Usage: dao node ls --state-dir DIR [options]

Lists the nodes of the cluster, as the control plane sees them: their state (ready,
disconnected, down), availability (active, or drain), the tasks they run, and when
they were last heard from.

` + adminHelp + `
With -o json, each node is one line of JSON with these fields:
  ID            the node's ID
  Hostname      its machine's name
  Status        ready, disconnected or down
  Message       why, in words
  Availability  active or drain
  Platform      os/architecture
  MilliCPU      its CPUs, in thousandths
  Memory        its memory, in bytes
  Tasks         how many of its tasks have not ended
  LastSeen      when it was last heard from (RFC 3339)
  Labels        its labels
Fields with no value are left out, but ID, Hostname, Status, Availability and Tasks.
`,
	}
	c.run = func(ctx context.Context, g *globals, args []string) int {
		const name = "node ls"
		if err := noArguments(args); err != nil {
			return usageError(g.stderr, name, err.Error())
		}
		cl, err := o.client()
		if err != nil {
			return usageError(g.stderr, name, err.Error())
		}
		nodes, err := cl.nodes(ctx)
		if err != nil {
			return fail(g, name, err)
		}
		if format == "json" {
			for _, n := range nodes {
				if err := writeJSON(g.stdout, n); err != nil {
					return fail(g, name, err)
				}
			}
			return exitOK
		}
		if len(nodes) == 0 {
			fmt.Fprintln(g.stdout, "No nodes in the cluster: join one with the dao agent command the control plane printed.")
			return exitOK
		}
		now := time.Now()
		t := &table{}
		t.row(bold, "ID", "HOSTNAME", "STATUS", "AVAILABILITY", "TASKS", "PLATFORM", "CPUS", "MEMORY", "LAST SEEN")
		for _, n := range nodes {
			colour := ""
			switch n.Status {
			case "disconnected":
				colour = yellow
			case "down":
				colour = red
			}
			cpus, mem, seen := "-", "-", "-"
			if n.MilliCPU > 0 {
				cpus = fmt.Sprintf("%g", float64(n.MilliCPU)/1000)
			}
			if n.Memory > 0 {
				mem = formatBytes(n.Memory)
			}
			if n.LastSeen != nil {
				seen = age(now, *n.LastSeen) + " ago"
			}
			t.row(colour, n.ID, orDash(n.Hostname), n.Status, n.Availability, fmt.Sprint(n.Tasks), orDash(n.Platform), cpus, mem, seen)
		}
		t.write(g.stdout, g.color, "")
		return exitOK
	}
	return c
}

func nodeRmCommand() *command {
	var o adminOptions
	var force bool
	var timeout time.Duration
	c := &command{
		name:    "rm",
		aliases: []string{"remove"},
		summary: "drain nodes and remove them from the cluster for good",
		flags: func(fs *pflag.FlagSet) {
			o.flags(fs)
			fs.BoolVarP(&force, "force", "f", false, "remove at once, without draining: the node's tasks are replaced elsewhere, and its containers run on until its agent is stopped")
			fs.DurationVar(&timeout, "timeout", defaultDrainTimeout, "wait at most `DURATION` for a node's tasks to stop")
		},
		usage: `Usage: dao node rm NODE... --state-dir DIR [options]

Removes nodes from the cluster for good. A node that is ready is drained first: its
tasks are stopped there and started on other nodes, and it is removed once none runs
(within --timeout; if they do not stop by then, it stays drained and is not removed).
A node that is disconnected or down cannot be drained: it is removed at once, and its
tasks are replaced elsewhere. So is any node with --force.

Its certificate is then refused: its agent is cut off (and can no longer join under
that ID), though the containers it still runs go on until it is stopped.

` + adminHelp,
	}
	c.run = func(ctx context.Context, g *globals, args []string) int {
		const name = "node rm"
		if len(args) == 0 {
			return usageError(g.stderr, name, "name the node to remove (dao node ls lists them)")
		}
		if timeout <= 0 {
			return usageError(g.stderr, name, fmt.Sprintf("--timeout %s: must be positive", timeout))
		}
		cl, err := o.client()
		if err != nil {
			return usageError(g.stderr, name, err.Error())
		}
		status := exitOK
		for _, id := range args {
			if !force {
				g.logf("draining node %s (at most %s)", id, timeout)
			}
			res, err := cl.removeNode(ctx, id, force, timeout)
			if err != nil {
				status = fail(g, name, err)
				continue
			}
			switch {
			case res.Drained:
				fmt.Fprintf(g.stdout, "node %s drained (%s stopped) and removed; its certificate is refused from now on\n",
					id, plural(res.Stopped, "task", "tasks"))
			default:
				fmt.Fprintf(g.stdout, "node %s (%s) removed; %s to be replaced elsewhere; its certificate is refused from now on\n",
					id, res.State, plural(res.Replaced, "task", "tasks"))
			}
		}
		return status
	}
	return c
}
