package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

func serviceCommand() *command {
	return &command{
		name:    "service",
		summary: "list, scale and remove the services of a dao control-plane",
		usage: `Usage: dao service COMMAND --state-dir DIR [options]

Commands:
  ls     list the services
  rm     remove services
  scale  set the number of replicas of services

Services are created and updated by dao control-plane --service FILE.json.

` + adminHelp,
		subcommands: []*command{serviceLsCommand(), serviceRmCommand(), serviceScaleCommand()},
	}
}

func serviceLsCommand() *command {
	var o adminOptions
	var format outputFormat
	c := &command{
		name:    "ls",
		aliases: []string{"list"},
		summary: "list the services",
		flags: func(fs *pflag.FlagSet) {
			o.flags(fs)
			formatFlags(fs, &format)
		},
		usage: `Usage: dao service ls --state-dir DIR [options]

Lists the services with their tasks running out of the replicas asked for, their image,
their spec's version and their last rolling update.

` + adminHelp + `
With -o json, each service is one line of JSON with these fields:
  Name           the service's name
  Mode           replicated or global
  Replicas       the replicas asked for (0 for a global service)
  Running        its tasks running now
  Image          its image
  Version        its spec's version, counting from 1
  UpdateState    its last rolling update's state: in-progress, completed, paused, ...
  UpdateMessage  why, in words
  CreatedAt      when it was created (RFC 3339)
  UpdatedAt      when it was last changed (RFC 3339)
Fields with no value are left out, but Name, Mode, Replicas, Running, Image and Version.
`,
	}
	c.run = func(ctx context.Context, g *globals, args []string) int {
		const name = "service ls"
		if err := noArguments(args); err != nil {
			return usageError(g.stderr, name, err.Error())
		}
		cl, err := o.client()
		if err != nil {
			return usageError(g.stderr, name, err.Error())
		}
		services, err := cl.services(ctx)
		if err != nil {
			return fail(g, name, err)
		}
		if format == "json" {
			for _, s := range services {
				if err := writeJSON(g.stdout, s); err != nil {
					return fail(g, name, err)
				}
			}
			return exitOK
		}
		if len(services) == 0 {
			fmt.Fprintln(g.stdout, "No services: create one with dao control-plane --service FILE.json.")
			return exitOK
		}
		now := time.Now()
		t := &table{}
		t.row(bold, "NAME", "MODE", "REPLICAS", "IMAGE", "VERSION", "UPDATED", "UPDATE")
		for _, s := range services {
			replicas := fmt.Sprintf("%d/%d", s.Running, s.Replicas)
			colour := ""
			if s.Mode == "global" {
				replicas = fmt.Sprintf("%d running", s.Running)
			} else if s.Running < s.Replicas {
				colour = yellow
			}
			updated := "-"
			if s.UpdatedAt != nil {
				updated = age(now, *s.UpdatedAt) + " ago"
			}
			update := orDash(s.UpdateState)
			if s.UpdateMessage != "" && s.UpdateState != "" && s.UpdateState != "completed" {
				update += ": " + shorten(s.UpdateMessage, 60)
			}
			t.row(colour, s.Name, s.Mode, replicas, s.Image, fmt.Sprint(s.Version), updated, update)
		}
		t.write(g.stdout, g.color, "")
		return exitOK
	}
	return c
}

func serviceRmCommand() *command {
	var o adminOptions
	c := &command{
		name:    "rm",
		aliases: []string{"remove"},
		summary: "remove services",
		flags:   o.flags,
		usage: `Usage: dao service rm NAME... --state-dir DIR

Removes services: each goes at once, and its tasks are stopped on their nodes (and
forgotten once stopped). A service given with --service comes back at the control
plane's next start: take the flag away too.

` + adminHelp,
	}
	c.run = func(ctx context.Context, g *globals, args []string) int {
		const name = "service rm"
		if len(args) == 0 {
			return usageError(g.stderr, name, "name the service to remove (dao service ls lists them)")
		}
		cl, err := o.client()
		if err != nil {
			return usageError(g.stderr, name, err.Error())
		}
		status := exitOK
		for _, s := range args {
			res, err := cl.removeService(ctx, s)
			if err != nil {
				status = fail(g, name, err)
				continue
			}
			fmt.Fprintf(g.stdout, "service %s removed; %s stopping\n", s, plural(res.Stopping, "task", "tasks"))
		}
		return status
	}
	return c
}

func serviceScaleCommand() *command {
	var o adminOptions
	c := &command{
		name:    "scale",
		summary: "set the number of replicas of services",
		flags:   o.flags,
		usage: `Usage: dao service scale NAME=REPLICAS... --state-dir DIR

Sets the number of replicas of replicated services, as docker service scale does:
scaling up starts tasks for the new slots, scaling down stops those of the highest
slots; no task is replaced. A service given with --service is set back to its file's
count at the control plane's next start.

` + adminHelp,
	}
	c.run = func(ctx context.Context, g *globals, args []string) int {
		const name = "service scale"
		if len(args) == 0 {
			return usageError(g.stderr, name, "name the service and its replicas, such as web=3")
		}
		type scale struct {
			name     string
			replicas int
		}
		var scales []scale
		for _, a := range args {
			svc, n, ok := strings.Cut(a, "=")
			replicas, err := strconv.Atoi(n)
			if !ok || svc == "" || err != nil || replicas < 0 {
				return usageError(g.stderr, name, fmt.Sprintf("%q: want NAME=REPLICAS, such as web=3, with REPLICAS >= 0", a))
			}
			scales = append(scales, scale{svc, replicas})
		}
		cl, err := o.client()
		if err != nil {
			return usageError(g.stderr, name, err.Error())
		}
		status := exitOK
		for _, s := range scales {
			e, err := cl.scaleService(ctx, s.name, s.replicas)
			if err != nil {
				status = fail(g, name, err)
				continue
			}
			fmt.Fprintf(g.stdout, "service %s scaled to %d (%d running now)\n", s.name, e.Replicas, e.Running)
		}
		return status
	}
	return c
}
