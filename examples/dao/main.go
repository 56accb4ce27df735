// Command dao looks after a containerd node: it pulls images into it, lists its containers
// and removes what nothing uses any more; and it runs a control plane and the nodes that
// join it from other machines.
//
//	dao [options] COMMAND [ARGS...]
//
//	Commands:
//	  agent          run this machine as a node of a dao control-plane
//	  clean          remove stopped containers, unused images, snapshots and content
//	  control-plane  run a control plane that remote nodes (dao agent) join
//	  import         import an image of this machine's busybox into containerd, with no registry
//	  ps             list containers
//	  pull           pull an image from a registry into containerd, ready to run
//	  version        print the versions of dao, Go and containerd
//	  help           show the help of a command
//
//	Options (before the command):
//	  --address PATH      containerd's socket (default $CONTAINERD_ADDRESS, else
//	                      /run/containerd/containerd.sock)
//	  -n, --namespace NS  containerd namespace (default $CONTAINERD_NAMESPACE, else dao)
//	  -v, --verbose       say what is done, step by step, on stderr
//	  --no-color          no colour (there is none either when stdout is not a terminal or
//	                      NO_COLOR is set)
//	  --version           print the versions and exit
//	  -h, --help          show this help
//
// `dao clean` works like `docker system prune`: it removes stopped containers, dangling
// images (every image no container uses, with --all), the snapshots nothing references and
// the content nothing references, as the cleaning policy of package policy chooses them. It
// never removes a running container or what one uses. `dao clean --dry-run` lists what would
// go, why, and the bytes it would free; `dao help clean` lists its options. `dao ps` lists the
// running containers and those an edge agent is restarting (with their last exit and next
// attempt), `dao ps --all` the stopped ones too: what clean would look at.
//
// `dao pull REF` pulls an image with package registry's pull engine, with a progress line
// per layer like docker pull and a summary of size, time and throughput. Mirrors, plain-HTTP
// registries, CAs and credentials come from /etc/dao/registries.yaml (k3s's format; see
// `dao help pull`) and from docker's config.json. `dao import busybox` needs no registry: it
// builds an image of the machine's busybox-static and imports it as dao.local/busybox:latest.
//
// `dao control-plane --state-dir DIR` runs an orchestrator over a bbolt store in DIR and
// serves the node protocol of package cluster (on 127.0.0.1:7450 unless --listen says
// otherwise); it prints a join token and the command that joins a machine, and then the
// changes of nodes and tasks. `dao agent --join TOKEN ADDRESS --state-dir DIR` joins the
// cluster once, and from then on `dao agent ADDRESS --state-dir DIR` runs the node: an edge
// agent on containerd, connected to the control plane, that keeps running its last
// assignment while the control plane is away, across restarts and reboots.
//
// Exit status: 0 on success, 1 on failure (such as a containerd that cannot be reached), 2 on
// a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/opendao/dao/edge"
)

// version is dao's version; release builds set it with
// -ldflags "-X main.version=v1.2.3".
var version = "dev"

const defaultAddress = "/run/containerd/containerd.sock"

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// globals are the options given before the command, and where output goes.
type globals struct {
	address   string
	namespace string
	verbose   bool
	color     bool
	stdout    io.Writer
	stderr    io.Writer
}

// logf writes a progress line on stderr when --verbose is on.
func (g *globals) logf(format string, args ...any) {
	if g.verbose {
		fmt.Fprintf(g.stderr, "dao: "+format+"\n", args...)
	}
}

// command is one of dao's commands.
type command struct {
	name    string
	summary string
	// run runs the command with its arguments; it returns the exit status.
	run func(ctx context.Context, g *globals, args []string) int
	// flags returns the command's flag set, for parsing and for help.
	flags func() *flag.FlagSet
	usage string
}

func commands() []*command {
	return []*command{agentCommand(), cleanCommand(), controlPlaneCommand(), importCommand(), psCommand(), pullCommand(), versionCommand()}
}

func lookup(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// run runs dao with args (without the program name) and returns its exit status.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	g := &globals{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("dao", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	address := os.Getenv("CONTAINERD_ADDRESS")
	if address == "" {
		address = defaultAddress
	}
	namespace := os.Getenv("CONTAINERD_NAMESPACE")
	if namespace == "" {
		namespace = edge.DefaultNamespace
	}
	fs.StringVar(&g.address, "address", address, "")
	fs.StringVar(&g.namespace, "namespace", namespace, "")
	fs.StringVar(&g.namespace, "n", namespace, "")
	fs.BoolVar(&g.verbose, "verbose", false, "")
	fs.BoolVar(&g.verbose, "v", false, "")
	noColor := fs.Bool("no-color", false, "")
	showVersion := fs.Bool("version", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, mainUsage())
			return exitOK
		}
		return usageError(stderr, "", err.Error())
	}
	g.color = !*noColor && os.Getenv("NO_COLOR") == "" && isTerminal(stdout)
	if *showVersion {
		return runVersion(ctx, g)
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, mainUsage())
		return exitUsage
	}
	if err := identifiers.Validate(g.namespace); err != nil {
		return usageError(stderr, "", fmt.Sprintf("--namespace %q: want letters and digits, joined by single '.', '_' or '-'", g.namespace))
	}
	ctx = namespaces.WithNamespace(ctx, g.namespace)
	name, rest := fs.Arg(0), fs.Args()[1:]
	if name == "help" {
		return help(g, rest)
	}
	cmd := lookup(name)
	if cmd == nil {
		return usageError(stderr, "", fmt.Sprintf("unknown command %q", name))
	}
	return cmd.run(ctx, g, rest)
}

// parseFlags parses the arguments of cmd. It returns done with the exit status when the
// command must not run: after -h (0) or a usage error (2).
func parseFlags(g *globals, cmd *command, fs *flag.FlagSet, args []string) (status int, done bool) {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(g.stdout, commandUsage(cmd))
			return exitOK, true
		}
		return usageError(g.stderr, cmd.name, err.Error()), true
	}
	if fs.NArg() > 0 {
		return usageError(g.stderr, cmd.name, fmt.Sprintf("unexpected argument %q", fs.Arg(0))), true
	}
	return 0, false
}

// usageError prints one line naming the mistake and where help is, and returns exitUsage.
func usageError(w io.Writer, cmd, msg string) int {
	prefix, helpCmd := "dao", "dao --help"
	if cmd != "" {
		prefix, helpCmd = "dao "+cmd, "dao help "+cmd
	}
	fmt.Fprintf(w, "%s: %s (see '%s')\n", prefix, msg, helpCmd)
	return exitUsage
}

// fail prints err as one line and returns exitFailure.
func fail(g *globals, cmd string, err error) int {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	var re *reachError
	if errors.As(err, &re) {
		fmt.Fprintf(g.stderr, "dao: %s\n", paint(g.color && isTerminal(g.stderr), red, msg))
		return exitFailure
	}
	fmt.Fprintf(g.stderr, "dao %s: %s\n", cmd, paint(g.color && isTerminal(g.stderr), red, msg))
	return exitFailure
}

func help(g *globals, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(g.stdout, mainUsage())
		return exitOK
	}
	cmd := lookup(args[0])
	if cmd == nil {
		return usageError(g.stderr, "", fmt.Sprintf("no help for unknown command %q", args[0]))
	}
	fmt.Fprint(g.stdout, commandUsage(cmd))
	return exitOK
}

func mainUsage() string {
	var b strings.Builder
	b.WriteString(`Usage: dao [options] COMMAND [ARGS...]

dao looks after a containerd node: it pulls images, lists containers and removes what
nothing uses; it runs a control plane, and nodes that join it from other machines.

Commands:
`)
	width := len("help")
	for _, c := range commands() {
		width = max(width, len(c.name))
	}
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprintf(&b, "  %-*s  %s\n", width, "help", "show the help of a command")
	fmt.Fprintf(&b, `
Options:
  --address PATH      containerd's socket (default $CONTAINERD_ADDRESS, else %s)
  -n, --namespace NS  containerd namespace (default $CONTAINERD_NAMESPACE, else %s)
  -v, --verbose       say what is done, step by step, on stderr
  --no-color          no colour (there is none either when stdout is not a terminal or NO_COLOR is set)
  --version           print the versions of dao, Go and containerd
  -h, --help          show this help

Run 'dao help COMMAND' for the options of a command.
`, defaultAddress, edge.DefaultNamespace)
	return b.String()
}

func commandUsage(c *command) string {
	var b strings.Builder
	b.WriteString(c.usage)
	fs := c.flags()
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		b.WriteString("\nOptions:\n")
		printFlags(&b, fs)
	}
	return b.String()
}
