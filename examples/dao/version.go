package main

import (
	"context"
	"runtime"
	"runtime/debug"

	"github.com/spf13/pflag"
)

func versionCommand() *command {
	var format outputFormat
	c := &command{
		name:    "version",
		summary: "print the versions of dao, Go and containerd",
		flags:   func(fs *pflag.FlagSet) { formatFlags(fs, &format) },
		usage: `Usage: dao version [options]

Prints the version of dao, the Go version it was built with, and the version of the containerd
at --address when it answers. It succeeds when containerd does not answer, and says so.

dao's version is the one a release build sets; else the module version go install
recorded (go install github.com/opendao/dao/examples/dao@v1.2.3 says v1.2.3); else "dev",
with the commit it was built from when go build recorded it (in a git checkout).

With -o json, it prints one line of JSON with these fields:
  Version     dao's version
  Revision    the commit it was built from, when known
  Time        the commit's time (RFC 3339), when known
  Modified    true when built from a checkout with changes not committed
  Go          the Go version it was built with
  Platform    its OS/ARCH
  Containerd  {"Address", "Version"} of the containerd at --address, or {"Address", "Error"}
`,
	}
	c.run = func(ctx context.Context, g *globals, args []string) int {
		if err := noArguments(args); err != nil {
			return usageError(g.stderr, c.name, err.Error())
		}
		return runVersion(ctx, g, format)
	}
	return c
}

// versionInfo is what dao version prints, and its fields in -o json, which do not change.
type versionInfo struct {
	Version    string `json:"Version"`
	Revision   string `json:"Revision,omitempty"`
	Time       string `json:"Time,omitempty"`
	Modified   bool   `json:"Modified,omitempty"`
	Go         string `json:"Go"`
	Platform   string `json:"Platform"`
	Containerd struct {
		Address string `json:"Address"`
		Version string `json:"Version,omitempty"`
		Error   string `json:"Error,omitempty"`
	} `json:"Containerd"`
}

// buildVersion fills in dao's version and the commit it was built from: the version a
// release build set (-ldflags -X main.version=...), else the module version that go
// install recorded, else "dev"; and the VCS settings go build recorded in a checkout.
func buildVersion(v *versionInfo) {
	info, _ := debug.ReadBuildInfo()
	versionFrom(v, version, info)
}

// versionFrom fills in v from the version set at link time (set) and the build information
// (info, nil when the program has none).
func versionFrom(v *versionInfo, set string, info *debug.BuildInfo) {
	v.Version = set
	if info == nil {
		return
	}
	if v.Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
}

func runVersion(ctx context.Context, g *globals, format outputFormat) int {
	var v versionInfo
	buildVersion(&v)
	v.Go = runtime.Version()
	v.Platform = runtime.GOOS + "/" + runtime.GOARCH
	v.Containerd.Address = g.address
	var ctrdText string // the containerd line of the table
	if c, err := connect(ctx, g); err != nil {
		v.Containerd.Error, ctrdText = err.Error(), err.Error()
		if re, ok := err.(*reachError); ok {
			v.Containerd.Error = "not reachable: " + re.cause()
			ctrdText = "not reachable at " + re.addr + " (" + re.cause() + ")"
		}
	} else {
		defer c.Close()
		cv, err := c.Version(ctx)
		if err != nil {
			v.Containerd.Error = "version unknown: " + err.Error()
			ctrdText = v.Containerd.Error
		} else {
			v.Containerd.Version = cv.Version
			ctrdText = cv.Version + " at " + g.address
		}
	}
	if format == "json" {
		if err := writeJSON(g.stdout, v); err != nil {
			return fail(g, "version", err)
		}
		return exitOK
	}
	t := &table{}
	t.row("", "dao", v.Version)
	if v.Revision != "" {
		commit := v.Revision
		if len(commit) > 12 {
			commit = commit[:12]
		}
		if v.Time != "" {
			commit += " of " + v.Time
		}
		if v.Modified {
			commit += ", with changes not committed"
		}
		t.row("", "commit", commit)
	}
	t.row("", "go", v.Go+" "+v.Platform)
	t.row("", "containerd", ctrdText)
	t.write(g.stdout, g.color, "")
	return exitOK
}
