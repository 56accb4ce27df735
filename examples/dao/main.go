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
//	  node           list and remove the nodes of a dao control-plane
//	  ps             list containers
//	  pull           pull an image from a registry into containerd, ready to run
//	  service        list, scale and remove the services of a dao control-plane
//	  version        print the versions of dao, Go and containerd
//	  completion     print a script that completes dao's commands: bash, zsh, fish or powershell
//	  help           show the help of a command
//
//	Options (before or after the command):
//	  --address PATH      containerd's socket (default $CONTAINERD_ADDRESS, else
//	                      /run/containerd/containerd.sock)
//	  -n, --namespace NS  containerd namespace (default $CONTAINERD_NAMESPACE, else dao)
//	  -v, --verbose       say what is done, step by step, on stderr
//	  --no-color          no colour (there is none either when stdout is not a terminal or
//	                      NO_COLOR is set)
//	  --version           print the versions and exit
//	  -h, --help          show this help
//
// Flags are taken as docker, nerdctl and crane take them (package cobra parses them): before
// or after the arguments (dao pull IMAGE --insecure HOST), short forms that combine (dao ps
// -aq, dao clean -af), "--" to end them; a mistyped command gets a "did you mean", and
// `dao completion bash` (zsh, fish, powershell) prints a completion script. The listings (dao
// ps, dao clean, dao version) take -o json (or docker's --format json): one JSON object a
// line, with field names that each command's help documents and that do not change. Sizes
// are written as docker writes them, in decimal units: 45.1MB.
//
// `dao clean` works like `docker system prune`: it lists what it would remove and asks
// "[y/N]" (unless -f), then removes stopped containers, dangling images (every image no
// container uses, with --all), the snapshots nothing references and the content nothing
// references, as the cleaning policy of package policy chooses them. It never removes a
// running container or what one uses. `dao clean --dry-run` lists what would go, why, and the
// bytes it would free; `dao help clean` lists its options. `dao ps` lists the
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
// assignment while the control plane is away, across restarts and reboots. On the control
// plane's machine, `dao node ls|rm` and `dao service ls|rm|scale` with --state-dir DIR
// administer it through its admin socket, DIR/admin.sock (mode 0600; see admin.go for why a
// unix socket rather than an admin certificate).
//
// Exit status: 0 on success, 1 on failure (such as a containerd that cannot be reached), 2 on
// a usage error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/opendao/dao/edge"
)

// version is dao's version; release builds set it with
// -ldflags "-X main.version=v1.2.3". Left at "dev", dao version shows the module version
// go install recorded instead (see buildVersion).
var version = "dev"

const defaultAddress = "/run/containerd/containerd.sock"

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// globals are the options every command takes, and where input and output go.
type globals struct {
	address   string
	namespace string
	verbose   bool
	color     bool
	stdin     io.Reader
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
	usage   string
	// flags adds the command's flags to fs, bound to the variables run reads.
	flags func(fs *pflag.FlagSet)
	// run runs the command with its arguments (the flags taken out); it returns the exit
	// status.
	run func(ctx context.Context, g *globals, args []string) int
	// aliases are other names of the command (rm: remove), as docker's.
	aliases []string
	// subcommands, when set, are the command's own commands (dao node ls): the command
	// then has no run and no flags of its own.
	subcommands []*command
}

func commands() []*command {
	return []*command{agentCommand(), cleanCommand(), controlPlaneCommand(), hubCommand(), importCommand(), nodeCommand(), psCommand(), pullCommand(), serviceCommand(), versionCommand()}
}

// usageErr is a mistake in the command line: cmd is the command's name, "" for dao itself.
type usageErr struct{ cmd, msg string }

func (e *usageErr) Error() string { return e.msg }

// run runs dao with args (without the program name) and returns its exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runContext(ctx, args, stdin, stdout, stderr)
}

// runContext is run until ctx is done, as SIGINT and SIGTERM end run: for tests that run a
// long-lived command (dao control-plane) in their own process.
func runContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	status := exitOK
	root := newRoot(g, &status)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil {
		var ue *usageErr
		if m := unknownCommand.FindStringSubmatch(err.Error()); m != nil && cmd == root {
			ue = &usageErr{msg: fmt.Sprintf("unknown command %q%s", m[1], suggest(root, m[1]))}
		}
		if ue == nil && !errors.As(err, &ue) {
			ue = &usageErr{msg: err.Error()}
			if cmd != nil && cmd != root {
				ue.cmd = strings.TrimPrefix(cmd.CommandPath(), "dao ")
			}
		}
		return usageError(stderr, ue.cmd, ue.msg)
	}
	return status
}

// unknownCommand matches cobra's error for an unknown command, with the name typed.
var unknownCommand = regexp.MustCompile(`^unknown command "(.*)" for "dao"`)

// newRoot returns the dao command, with its commands, that runs with g and sets *status.
func newRoot(g *globals, status *int) *cobra.Command {
	var noColor, showVersion bool
	root := &cobra.Command{
		Use: "dao",
		// No Args: cobra then refuses an unknown command before it parses the flags that
		// follow it (run rewrites its message).
		SilenceErrors: true,
		SilenceUsage:  true,
		// Flag errors name the command whose flags they are.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			g.color = !noColor && os.Getenv("NO_COLOR") == "" && isTerminal(g.stdout)
			if err := identifiers.Validate(g.namespace); err != nil {
				return &usageErr{msg: fmt.Sprintf("--namespace %q: want letters and digits, joined by single '.', '_' or '-'", g.namespace)}
			}
			cmd.SetContext(namespaces.WithNamespace(cmd.Context(), g.namespace))
			return nil
		},
	}
	root.SetIn(g.stdin)
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	address := os.Getenv("CONTAINERD_ADDRESS")
	if address == "" {
		address = defaultAddress
	}
	namespace := os.Getenv("CONTAINERD_NAMESPACE")
	if namespace == "" {
		namespace = edge.DefaultNamespace
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.address, "address", address, "containerd's socket `PATH`")
	pf.StringVarP(&g.namespace, "namespace", "n", namespace, "containerd namespace `NS`")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "say what is done, step by step, on stderr")
	pf.BoolVar(&noColor, "no-color", false, "no colour")
	root.Flags().BoolVar(&showVersion, "version", false, "print the versions of dao, Go and containerd")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		name := ""
		if cmd != root {
			name = strings.TrimPrefix(cmd.CommandPath(), "dao ")
		}
		return &usageErr{cmd: name, msg: err.Error()}
	})
	root.RunE = func(cmd *cobra.Command, args []string) error {
		switch {
		case showVersion:
			*status = runVersion(cmd.Context(), g, "table")
		case len(args) == 0:
			fmt.Fprint(g.stderr, mainUsage())
			*status = exitUsage
		default:
			return &usageErr{msg: fmt.Sprintf("unknown command %q%s", args[0], suggest(root, args[0]))}
		}
		return nil
	}

	usages := map[*cobra.Command]*command{}
	var add func(parent *cobra.Command, c *command)
	add = func(parent *cobra.Command, c *command) {
		cc := &cobra.Command{
			Use:                   c.name,
			Short:                 c.summary,
			Aliases:               c.aliases,
			Args:                  cobra.ArbitraryArgs,
			DisableFlagsInUseLine: true,
		}
		usages[cc] = c
		parent.AddCommand(cc)
		if len(c.subcommands) > 0 {
			// dao node alone shows its commands; dao node lss is a usage error, whatever
			// flags follow it.
			cc.FParseErrWhitelist.UnknownFlags = true
			cc.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) == 0 {
					fmt.Fprint(g.stderr, c.usage)
					*status = exitUsage
					return nil
				}
				return &usageErr{cmd: c.name, msg: fmt.Sprintf("unknown command %q%s", args[0], suggest(cmd, args[0]))}
			}
			for _, sub := range c.subcommands {
				add(cc, sub)
			}
			return
		}
		cc.RunE = func(cmd *cobra.Command, args []string) error {
			*status = c.run(cmd.Context(), g, args)
			return nil
		}
		cc.Flags().SortFlags = false
		c.flags(cc.Flags())
		for _, name := range []string{"output", "format"} {
			if cc.Flags().Lookup(name) != nil {
				cc.RegisterFlagCompletionFunc(name, cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
			}
		}
	}
	for _, c := range commands() {
		add(root, c)
	}
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [COMMAND]",
		Short: "show the help of a command",
		Args:  cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				fmt.Fprint(g.stdout, mainUsage())
				return nil
			}
			cmd, _, err := root.Find(args)
			if err != nil || cmd == root {
				return &usageErr{msg: fmt.Sprintf("no help for unknown command %q%s", args[0], suggest(root, args[0]))}
			}
			return cmd.Help()
		},
	})
	cobraHelp := root.HelpFunc()
	root.SetHelpFunc(func(cmd *cobra.Command, args []string) {
		switch c := usages[cmd]; {
		case cmd == root:
			fmt.Fprint(g.stdout, mainUsage())
		case c != nil:
			fs := cmd.LocalNonPersistentFlags()
			fs.SortFlags = false // in the order the command adds them
			fmt.Fprint(g.stdout, commandUsage(c, fs))
		default: // completion and its shells
			cobraHelp(cmd, args)
		}
	})
	root.InitDefaultCompletionCmd()
	return root
}

// suggest is `: did you mean "pull"?` when typed is the beginning of a command's name, or
// close to it (two edits or fewer); of several, those closest.
func suggest(root *cobra.Command, typed string) string {
	best, names := 3, []string(nil)
	for _, c := range root.Commands() {
		if !c.IsAvailableCommand() && c.Name() != "help" {
			continue
		}
		d := editDistance(strings.ToLower(typed), c.Name())
		if strings.HasPrefix(c.Name(), strings.ToLower(typed)) {
			d = 0
		}
		switch {
		case d < best:
			best, names = d, []string{fmt.Sprintf("%q", c.Name())}
		case d == best:
			names = append(names, fmt.Sprintf("%q", c.Name()))
		}
	}
	if len(names) == 0 {
		return ""
	}
	return ": did you mean " + strings.Join(names, " or ") + "?"
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
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

// noArguments returns a usage error when args is not empty.
func noArguments(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q", args[0])
	}
	return nil
}

func mainUsage() string {
	var b strings.Builder
	b.WriteString(`Usage: dao [options] COMMAND [ARGS...]

dao looks after a containerd node: it pulls images, lists containers and removes what
nothing uses; it runs a control plane, and nodes that join it from other machines.

Commands:
`)
	extra := [][2]string{
		{"completion", "print a script that completes dao's commands: bash, zsh, fish or powershell"},
		{"help", "show the help of a command"},
	}
	width := 0
	for _, e := range extra {
		width = max(width, len(e[0]))
	}
	for _, c := range commands() {
		width = max(width, len(c.name))
	}
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, c.name, c.summary)
	}
	for _, e := range extra {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, e[0], e[1])
	}
	fmt.Fprintf(&b, `
Options (before or after the command):
  --address PATH      containerd's socket (default $CONTAINERD_ADDRESS, else %s)
  -n, --namespace NS  containerd namespace (default $CONTAINERD_NAMESPACE, else %s)
  -v, --verbose       say what is done, step by step, on stderr
  --no-color          no colour (there is none either when stdout is not a terminal or NO_COLOR is set)
  --version           print the versions of dao, Go and containerd
  -h, --help          show this help

Run 'dao help COMMAND' for the options of a command. Shell completion:
  source <(dao completion bash)    (zsh: dao completion zsh; fish: dao completion fish | source)
`, defaultAddress, edge.DefaultNamespace)
	return b.String()
}

func commandUsage(c *command, fs *pflag.FlagSet) string {
	var b strings.Builder
	b.WriteString(c.usage)
	n := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" {
			n++
		}
	})
	if n > 0 {
		b.WriteString("\nOptions:\n")
		printFlags(&b, fs)
	}
	return b.String()
}
