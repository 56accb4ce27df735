package pipeline

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
)

// services are the running service containers of a step.
type services struct {
	ids   []string
	env   map[string]string // DAO_SERVICE_<NAME>=address
	hosts string            // the step's /etc/hosts, naming the services
}

// serviceEnvName is the variable that holds a service's address.
func serviceEnvName(name string) string {
	return "DAO_SERVICE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// startServices starts the step's services and waits until each accepts connections on its
// ports. On error, the services started so far are in the result, to be stopped.
func (ru *run) startServices(ctx context.Context, n *node, step *Step) (*services, error) {
	if len(step.Services) == 0 {
		return nil, nil
	}
	svcs := &services{env: map[string]string{}}
	var hosts strings.Builder
	hosts.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	addrs := make([]string, len(step.Services))
	for i := range step.Services {
		sv := &step.Services[i]
		id := fmt.Sprintf("%s-%s.svc.%s", ru.id, n.key, sv.Name)
		env := maps.Clone(ru.p.Env)
		if env == nil {
			env = map[string]string{}
		}
		maps.Copy(env, sv.Env)
		for _, s := range sv.Secrets {
			env[s] = ru.secrets[s]
		}
		spec := dao.ContainerSpec{
			Image:           sv.Image,
			Env:             envList(env),
			Hostname:        sv.Name,
			StopGracePeriod: dao.Duration(ru.r.opts.stopGrace),
		}
		spec.Command, spec.Args = command(sv.Entrypoint, sv.Commands, sv.Args)
		labels := map[string]string{LabelRun: ru.id, LabelStep: n.def.Name}
		st, err := ru.r.rt.Run(ctx, id, spec, edge.WithLabels(labels))
		svcs.ids = append(svcs.ids, id) // a failed Run may have created it
		if err != nil {
			return svcs, fmt.Errorf("service %s: %w", sv.Name, err)
		}
		if len(st.Addresses) == 0 {
			return svcs, fmt.Errorf("service %s: %w", sv.Name, ErrNoNetwork)
		}
		addrs[i] = st.Addresses[0]
		svcs.env[serviceEnvName(sv.Name)] = addrs[i]
		fmt.Fprintf(&hosts, "%s\t%s\n", addrs[i], sv.Name)
		ru.log(n, "service %s: container %s started at %s", sv.Name, id, addrs[i])
	}
	for i := range step.Services {
		if err := ru.waitReady(ctx, n, svcs.ids[i], addrs[i], &step.Services[i]); err != nil {
			return svcs, err
		}
	}
	svcs.hosts = filepath.Join(ru.scratch, n.key, "hosts")
	if err := os.MkdirAll(filepath.Dir(svcs.hosts), 0o755); err != nil {
		return svcs, err
	}
	if err := os.WriteFile(svcs.hosts, []byte(hosts.String()), 0o644); err != nil {
		return svcs, err
	}
	return svcs, nil
}

// waitReady waits until the service accepts TCP connections on each of its ports.
func (ru *run) waitReady(ctx context.Context, n *node, id, addr string, sv *Service) error {
	if len(sv.Ports) == 0 {
		return nil
	}
	timeout := sv.ReadyTimeout
	if timeout == 0 {
		timeout = DefaultReadyTimeout
	}
	begin := time.Now()
	deadline := begin.Add(timeout.Std())
	for _, port := range sv.Ports {
		target := net.JoinHostPort(addr, strconv.Itoa(port))
		for {
			d := net.Dialer{Timeout: time.Second}
			conn, err := d.DialContext(ctx, "tcp", target)
			if err == nil {
				conn.Close()
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if st, err := ru.r.rt.Status(ctx, id); err == nil && st.State == edge.StateStopped {
				ru.serviceLogs(ctx, n, id, sv.Name)
				return fmt.Errorf("%w: service %s %s", ErrServiceNotReady, sv.Name, st.Reason())
			}
			if time.Now().After(deadline) {
				ru.serviceLogs(ctx, n, id, sv.Name)
				return fmt.Errorf("%w: service %s: port %d accepted no connection within %s", ErrServiceNotReady, sv.Name, port, timeout)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	ru.log(n, "service %s: ready after %s", sv.Name, time.Since(begin).Round(time.Millisecond))
	return nil
}

// serviceLogs copies the end of a service's output into the step's log, to show why it did
// not get ready.
func (ru *run) serviceLogs(ctx context.Context, n *node, id, name string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	rc, err := ru.r.rt.Logs(rctx, id, edge.LogOptions{Tail: 4 << 10})
	if err != nil {
		return
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if line != "" {
			ru.log(n, "service %s: %s", name, line)
		}
	}
}

// stopServices stops and removes the step's services, every one of them even when some
// cannot be removed, and logs what failed.
func (ru *run) stopServices(ctx context.Context, n *node, svcs *services) {
	if svcs == nil {
		return
	}
	var errs *multierror.Error
	for _, id := range svcs.ids {
		if err := ru.removeContainer(ctx, id); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	if err := oneLine(errs.ErrorOrNil()); err != nil {
		ru.log(n, "services: %v", err)
	}
}
