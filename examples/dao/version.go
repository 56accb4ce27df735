package main

import (
	"context"
	"flag"
	"runtime"
)

func versionCommand() *command {
	c := &command{
		name:    "version",
		summary: "print the versions of dao, Go and containerd",
		flags:   func() *flag.FlagSet { return flag.NewFlagSet("version", flag.ContinueOnError) },
		usage: `Usage: dao version

Prints the version of dao, the Go version it was built with, and the version of the containerd
at --address when it answers. It succeeds when containerd does not answer, and says so.
`,
	}
	c.run = func(ctx context.Context, g *globals, args []string) int {
		if status, done := parseFlags(g, c, c.flags(), args); done {
			return status
		}
		return runVersion(ctx, g)
	}
	return c
}

func runVersion(ctx context.Context, g *globals) int {
	t := &table{}
	t.row("", "dao", version)
	t.row("", "go", runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	if c, err := connect(ctx, g); err != nil {
		msg := err.Error()
		if re, ok := err.(*reachError); ok {
			msg = "not reachable at " + re.addr + " (" + re.cause() + ")"
		}
		t.row("", "containerd", msg)
	} else {
		defer c.Close()
		v, err := c.Version(ctx)
		if err != nil {
			t.row("", "containerd", "version unknown: "+err.Error())
		} else {
			t.row("", "containerd", v.Version+" at "+g.address)
		}
	}
	t.write(g.stdout, g.color, "")
	return exitOK
}
