package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/pkg/netns"
	"github.com/containerd/containerd/v2/pkg/oci"
	gocni "github.com/containerd/go-cni"
	"github.com/hashicorp/go-multierror"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opendao/dao"
)

// Labels of a container on a Runtime's network.
const (
	// LabelNetNS is the path of the container's network namespace.
	LabelNetNS = dao.LabelPrefix + "netns"
	// LabelAddresses holds the container's IP addresses, comma-separated.
	LabelAddresses = dao.LabelPrefix + "addresses"
	// LabelPorts holds the published ports, as JSON, to remove their rules later.
	LabelPorts = dao.LabelPrefix + "ports"
)

// Network is a CNI bridge network for a Runtime's containers: each container gets its own
// network namespace, an address in Subnet on a Linux bridge, outbound masquerading, and its
// published ports (dao.PortMapping with a HostPort) forwarded from the node by the portmap
// plugin. It needs the CNI plugins bridge, host-local, portmap and loopback (Debian package
// containernetworking-plugins) and iptables.
type Network struct {
	// Subnet is the containers' address range in CIDR form, such as "10.88.0.0/16". Required.
	Subnet string
	// Name names the CNI network; the default is "dao".
	Name string
	// Bridge is the Linux bridge device; the default is "dao0".
	Bridge string
	// PluginDirs are searched for the CNI plugins; the default is /usr/lib/cni and
	// /opt/cni/bin.
	PluginDirs []string
	// StateDir keeps the address allocations; the default is /var/lib/dao/cni.
	StateDir string
	// NetNSDir holds the network namespaces' mount points; the default is /run/dao/netns.
	NetNSDir string
}

func (n Network) withDefaults() Network {
	if n.Name == "" {
		n.Name = "dao"
	}
	if n.Bridge == "" {
		n.Bridge = "dao0"
	}
	if len(n.PluginDirs) == 0 {
		n.PluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}
	}
	if n.StateDir == "" {
		n.StateDir = "/var/lib/dao/cni"
	}
	if n.NetNSDir == "" {
		n.NetNSDir = "/run/dao/netns"
	}
	return n
}

// WithNetwork puts the Runtime's containers (other than those with HostNetwork) on a CNI
// bridge network. Without it each container has a network namespace of its own with only a
// loopback interface, and specs that publish ports are refused. Every bad field of n is
// reported, each an ErrInvalidOption.
func WithNetwork(n Network) Option {
	return func(o *options) error {
		n = n.withDefaults()
		var errs *multierror.Error // every bad field, each an ErrInvalidOption
		if _, _, err := net.ParseCIDR(n.Subnet); err != nil {
			errs = multierror.Append(errs, optionError("WithNetwork", "subnet %q: must be CIDR such as 10.88.0.0/16", n.Subnet))
		}
		if len(n.Bridge) > 15 || strings.ContainsAny(n.Bridge, " /") {
			errs = multierror.Append(errs, optionError("WithNetwork", "bridge %q: must be a device name of at most 15 bytes", n.Bridge))
		}
		for _, d := range []string{n.StateDir, n.NetNSDir} {
			if !filepath.IsAbs(d) {
				errs = multierror.Append(errs, optionError("WithNetwork", "directory %q: must be an absolute path", d))
			}
		}
		if err := errs.ErrorOrNil(); err != nil {
			return err
		}
		o.network = &n
		return nil
	}
}

// conflist is the CNI configuration of the network.
func (n *Network) conflist() []byte {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       n.Name,
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      n.Bridge,
				"isGateway":   true,
				"ipMasq":      true,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": n.Subnet}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": filepath.Join(n.StateDir, "ipam"),
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	b, _ := json.Marshal(conf)
	return b
}

func newCNI(n *Network) (gocni.CNI, error) {
	c, err := gocni.New(gocni.WithPluginDir(n.PluginDirs), gocni.WithInterfacePrefix("eth"))
	if err != nil {
		return nil, fmt.Errorf("edge: network: %w", err)
	}
	if err := c.Load(gocni.WithLoNetwork, gocni.WithConfListBytes(n.conflist())); err != nil {
		return nil, fmt.Errorf("edge: network: load CNI configuration: %w", err)
	}
	if err := os.MkdirAll(n.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("edge: network: %w", err)
	}
	return c, nil
}

// attachment is a container's place on the network.
type attachment struct {
	netns     *netns.NetNS
	addresses []string
	ports     []gocni.PortMapping
}

func portMappings(ps []dao.PortMapping) []gocni.PortMapping {
	var out []gocni.PortMapping
	for _, p := range ps {
		if p.HostPort == 0 {
			continue
		}
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		out = append(out, gocni.PortMapping{HostPort: int32(p.HostPort), ContainerPort: int32(p.ContainerPort), Protocol: proto})
	}
	return out
}

// attach creates a network namespace for container id and connects it to the network.
func (r *Runtime) attach(ctx context.Context, id string, spec *dao.ContainerSpec) (*attachment, error) {
	ns, err := netns.NewNetNS(r.opts.network.NetNSDir)
	if err != nil {
		return nil, fmt.Errorf("edge: network namespace for %s: %w", id, err)
	}
	a := &attachment{netns: ns, ports: portMappings(spec.Ports)}
	res, err := r.cni.Setup(ctx, id, ns.GetPath(), gocni.WithCapabilityPortMap(a.ports))
	if err != nil {
		// The plugins that did their part (an address, iptables rules) undo it on a DEL,
		// as CNI asks of a failed ADD; the namespace alone would leave them behind.
		var undo []error
		if rerr := r.cni.Remove(ctx, id, ns.GetPath(), gocni.WithCapabilityPortMap(a.ports)); rerr != nil {
			undo = append(undo, fmt.Errorf("edge: connect %s: undo: disconnect: %w", id, rerr))
		}
		if nerr := ns.Remove(); nerr != nil {
			undo = append(undo, fmt.Errorf("edge: connect %s: undo: remove its network namespace: %w", id, nerr))
		}
		return nil, withCleanup(fmt.Errorf("edge: connect %s to network %s: %w", id, r.opts.network.Name, err), undo...)
	}
	for name, cfg := range res.Interfaces {
		if name == "lo" {
			continue
		}
		for _, ipc := range cfg.IPConfigs {
			a.addresses = append(a.addresses, ipc.IP.String())
		}
	}
	return a, nil
}

func (a *attachment) specOpts() []oci.SpecOpts {
	return []oci.SpecOpts{oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: a.netns.GetPath()})}
}

func (a *attachment) labels() map[string]string {
	ports, _ := json.Marshal(a.ports)
	return map[string]string{
		LabelNetNS:     a.netns.GetPath(),
		LabelAddresses: strings.Join(a.addresses, ","),
		LabelPorts:     string(ports),
	}
}

// detach disconnects the container whose labels are given and removes its namespace.
func (r *Runtime) detach(ctx context.Context, id string, labels map[string]string) error {
	path := labels[LabelNetNS]
	if path == "" || r.cni == nil {
		return nil
	}
	var ports []gocni.PortMapping
	_ = json.Unmarshal([]byte(labels[LabelPorts]), &ports)
	if err := r.cni.Remove(ctx, id, path, gocni.WithCapabilityPortMap(ports)); err != nil {
		return fmt.Errorf("edge: disconnect %s from network: %w", id, err)
	}
	if err := netns.LoadNetNS(path).Remove(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("edge: remove network namespace of %s: %w", id, err)
	}
	return nil
}
