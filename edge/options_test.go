package edge_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/testutil/fixture"
)

// checkOptionError checks that err rejects the option named name: it says which, and it is
// ErrInvalidOption, dao.ErrInvalid and errdefs' InvalidArgument.
func checkOptionError(t *testing.T, name string, err error) {
	t.Helper()
	fixture.CheckOptionError(t, name, err)
	if err != nil && !errors.Is(err, edge.ErrInvalidOption) {
		t.Errorf("%s: %v is not edge.ErrInvalidOption", name, err)
	}
}

// TestOptionsRejectBadValues: a Runtime's and an Agent's options refuse bad values, before
// anything is done with them.
func TestOptionsRejectBadValues(t *testing.T) {
	t.Parallel()
	for name, opt := range map[string]edge.Option{
		"WithNamespace":        edge.WithNamespace(""),
		"WithNamespace(\"a/b":  edge.WithNamespace("a/b"),
		"WithSnapshotter":      edge.WithSnapshotter(""),
		"WithLogDir":           edge.WithLogDir("relative/logs"),
		"WithLogMaxSize":       edge.WithLogMaxSize(100),
		"WithLogCheckInterval": edge.WithLogCheckInterval(time.Millisecond),
		"WithLogger":           edge.WithLogger(nil),
		"WithLoggerBinary":     edge.WithLoggerBinary("dao-shim-logger"),
		"WithRuntimeName":      edge.WithRuntimeName(""),
		"WithPuller":           edge.WithPuller(nil),
		"WithSubscribeBuffer":  edge.WithSubscribeBuffer(0),
		"WithNetwork":          edge.WithNetwork(edge.Network{Subnet: "10.0.0.0/33"}),
	} {
		// The options are applied before the client is used: none is needed.
		_, err := edge.NewFromClient(nil, opt)
		checkOptionError(t, strings.SplitN(name, "(", 2)[0], err)
	}
	for name, opt := range map[string]edge.AgentOption{
		"WithHeartbeat":       edge.WithHeartbeat(time.Millisecond, func() {}),
		"WithHeartbeat(1s)":   edge.WithHeartbeat(time.Second, nil),
		"WithStateDir":        edge.WithStateDir("state"),
		"WithStatusFunc":      edge.WithStatusFunc(nil),
		"WithResyncInterval":  edge.WithResyncInterval(time.Millisecond),
		"WithAgentLogger":     edge.WithAgentLogger(nil),
		"WithAgentLogger(ok)": edge.WithAgentLogger(slog.Default()),
	} {
		_, err := edge.NewAgent(nil, opt)
		if name == "WithAgentLogger(ok)" {
			// A good option: what is refused is the nil Runtime.
			if !errors.Is(err, dao.ErrInvalid) || errors.Is(err, edge.ErrInvalidOption) {
				t.Errorf("NewAgent(nil): %v, want dao.ErrInvalid for the Runtime", err)
			}
			continue
		}
		checkOptionError(t, strings.SplitN(name, "(", 2)[0], err)
	}
}

// TestNetworkOptionNamesEveryBadField: WithNetwork reports each bad field of the network,
// each an ErrInvalidOption that errors.As finds in the multierror.
func TestNetworkOptionNamesEveryBadField(t *testing.T) {
	t.Parallel()
	_, err := edge.NewFromClient(nil, edge.WithNetwork(edge.Network{
		Subnet: "nonsense", Bridge: "a bridge name far too long", StateDir: "relative",
	}))
	checkOptionError(t, "WithNetwork", err)
	var merr *multierror.Error
	if !errors.As(err, &merr) || len(merr.Errors) != 3 {
		t.Fatalf("%v: want 3 errors, one per bad field", err)
	}
	for _, want := range []string{"subnet", "bridge", "directory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not name the %s", err, want)
		}
	}
}

// TestCreateAndStopOptionsRejectBadValues: a bad CreateOption creates nothing, a bad
// StopOption signals nothing.
func TestCreateAndStopOptionsRejectBadValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := uniqueID("opts", 0)
	spec := dao.ContainerSpec{Image: e.app, StopGracePeriod: dao.Duration(time.Second)}
	for name, opt := range map[string]edge.CreateOption{
		"WithLabels(empty key)": edge.WithLabels(map[string]string{"": "x"}),
		"WithLabels(too long)":  edge.WithLabels(map[string]string{"k": strings.Repeat("v", 5000)}),
	} {
		err := e.rt.Create(e.ctx, id, spec, edge.WithLabels(map[string]string{"ok": "1"}), opt)
		checkOptionError(t, "WithLabels", err)
		if _, err := e.rt.Status(e.ctx, id); !errors.Is(err, edge.ErrNotFound) {
			t.Errorf("%s: the container was made (%v)", name, err)
		}
	}
	e.run(id, spec)
	for name, opt := range map[string]edge.StopOption{
		"WithGracePeriod":         edge.WithGracePeriod(-time.Second),
		"WithStopSignal":          edge.WithStopSignal(""),
		"WithStopSignal(SIGNOPE)": edge.WithStopSignal("SIGNOPE"),
	} {
		_, err := e.rt.Stop(e.ctx, id, opt)
		checkOptionError(t, strings.SplitN(name, "(", 2)[0], err)
		if st, err := e.rt.Status(e.ctx, id); err != nil || st.State != edge.StateRunning {
			t.Errorf("%s: the container was stopped: %v %s", name, err, st.State)
		}
	}
	_, err := e.rt.Logs(e.ctx, id, edge.LogOptions{Tail: -1})
	checkOptionError(t, "LogOptions.Tail", err)
	if st, err := e.rt.Stop(e.ctx, id, edge.WithStopSignal("SIGKILL"), edge.WithGracePeriod(0)); err != nil || st.ExitCode != 137 {
		t.Errorf("Stop with good options: %v, exit code %d, want 137", err, st.ExitCode)
	}
}
