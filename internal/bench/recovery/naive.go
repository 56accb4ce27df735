package main

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/typeurl/v2"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/bench/benchutil"
)

// naive restarts its container as a user of the containerd client would: on the container's
// exit event, delete the task, create a new one, start it. Nothing else: no status read, no
// label, no lock.
type naive struct {
	ctx       context.Context // in the naive namespace
	c         client.Container
	creator   cio.Creator
	envelopes <-chan *events.Envelope
	errs      <-chan error

	cur     atomic.Uint32 // PID of the running process
	started chan []mark   // each start, with the steps of the restart before it
	failed  chan error
}

func newNaive(ctx context.Context, env *benchutil.Env, spec dao.ContainerSpec, logDir string) (*naive, error) {
	if err := importInto(env, naiveNS); err != nil {
		return nil, err
	}
	// The same spec and labels as Dao's container, made by Dao's own code; the Runtime is
	// closed at once, so that its event loop does not look at the naive container's exits.
	rt, err := edge.NewFromClient(env.Client, edge.WithNamespace(naiveNS), edge.WithLogDir(logDir))
	if err != nil {
		return nil, err
	}
	err = rt.Create(ctx, naiveID, spec)
	rt.Close()
	if err != nil {
		return nil, err
	}
	nctx := namespaces.WithNamespace(ctx, naiveNS)
	c, err := env.Client.LoadContainer(nctx, naiveID)
	if err != nil {
		return nil, err
	}
	// The same logger as Dao's container: its task's stdout URI, as the Runtime set it.
	resp, err := env.Client.TaskService().Get(env.Ctx, &tasksapi.GetRequest{ContainerID: daoID})
	if err != nil {
		return nil, fmt.Errorf("naive: the logger of %s: %w", daoID, err)
	}
	logger, err := url.Parse(resp.Process.Stdout)
	if err != nil {
		return nil, fmt.Errorf("naive: the logger of %s: %w", daoID, err)
	}
	envelopes, errs := env.Client.Subscribe(nctx, fmt.Sprintf(`namespace==%s,topic=="/tasks/exit"`, naiveNS))
	return &naive{
		ctx: nctx, c: c, creator: cio.LogURI(logger),
		envelopes: envelopes, errs: errs,
		started: make(chan []mark, 4), failed: make(chan error, 1),
	}, nil
}

func (n *naive) pid() uint32 { return n.cur.Load() }

func (n *naive) run(ctx context.Context) {
	task, err := n.start(nil)
	if err != nil {
		n.failed <- err
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-n.errs:
			if ctx.Err() == nil {
				n.failed <- fmt.Errorf("naive: event stream: %v", err)
			}
			return
		case env := <-n.envelopes:
			v, err := typeurl.UnmarshalAny(env.Event)
			if err != nil {
				continue
			}
			if e, ok := v.(*apievents.TaskExit); !ok || e.ContainerID != naiveID || e.ID != e.ContainerID {
				continue
			}
			marks := []mark{{"naive: exit received", time.Now()}}
			if _, err := task.Delete(n.ctx); err != nil {
				n.failed <- fmt.Errorf("naive: delete: %w", err)
				return
			}
			marks = append(marks, mark{"naive: deleted", time.Now()})
			if task, err = n.start(marks); err != nil {
				n.failed <- err
				return
			}
		}
	}
}

func (n *naive) start(marks []mark) (client.Task, error) {
	task, err := n.c.NewTask(n.ctx, n.creator)
	if err != nil {
		return nil, fmt.Errorf("naive: new task: %w", err)
	}
	marks = append(marks, mark{"naive: created", time.Now()})
	if err := task.Start(n.ctx); err != nil {
		return nil, fmt.Errorf("naive: start: %w", err)
	}
	marks = append(marks, mark{"naive: started", time.Now()})
	n.cur.Store(task.Pid())
	n.started <- marks
	return task, nil
}

// waitStarted returns the steps of the naive loop's next start.
func (n *naive) waitStarted(timeout time.Duration) ([]mark, error) {
	select {
	case m := <-n.started:
		return m, nil
	case err := <-n.failed:
		return nil, err
	case <-time.After(timeout):
		return nil, fmt.Errorf("naive: no start within %s", timeout)
	}
}
