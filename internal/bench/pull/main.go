// Command pull measures Dao's image pull against containerd's and skopeo's, on one private
// docker-registry and fresh private containerd daemons, in one run.
//
//	go run ./internal/bench/pull [-runs 5] [-layers 8] [-layer-mb 25] [-big-mb 200] [-only pull,layout,fetch,unpack] [-cpuprofile FILE]
//
// It builds two images from generated data about half compressible (64 KiB random blocks
// alternating with 64 KiB of a repeated pattern, in files of 256 KiB to 2 MiB; it compresses
// to 0.58), gzip-compressed by Dao's image builder: "8 layers" of about 25 MB compressed
// each and "1 layer" of about 200 MB, and pushes them to the registry. Then, for each run,
// alternating the order:
//
//   - pull: `ctr images pull --plain-http` (containerd's own pull, unpack into overlayfs
//     included) against registry.Client.Pull with unpack into overlayfs, each into a
//     containerd started fresh for the run, so that no content, snapshot or metadata is left
//     from before (in containerd 1.6 content is shared between namespaces);
//   - layout: `skopeo copy docker://... oci:DIR` against registry.Client.PullLayout into an
//     empty directory, both writing an OCI image layout;
//   - fetch: `ctr content fetch --plain-http` against Pull without unpack, both fetching into
//     a fresh content store;
//   - unpack: `skopeo copy` (fetch only) against Pull with unpack, the distance of Dao's
//     whole pull to fetching alone; it prints how many times as long Dao's pull takes.
//
// Before each timed pull the page cache is synced and the program waits (up to 30s) for the
// machine to be idle, so that other work on a shared machine does not land in a run; the
// registry's files stay cached for all. It prints the median of each, every run, the ratios,
// the CPU time each process spent (the puller, containerd, the registry), and the machine's
// limit: sha256 and gunzip throughput on one and on every core, and the least CPU time a
// pull needs at those rates.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/opendao/dao/internal/bench/benchutil"
	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/registry"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/remote"
)

const namespace = "bench"

// cpuProfile is the file of the -cpuprofile flag.
var cpuProfile string

func main() {
	runs := flag.Int("runs", 5, "timed runs of each contender")
	layers := flag.Int("layers", 8, "layers of the layered image")
	layerMB := flag.Int("layer-mb", 25, "compressed size of each of its layers, in MB")
	bigMB := flag.Int("big-mb", 200, "compressed size of the single-layer image, in MB")
	concurrency := flag.Int("concurrency", 0, "Dao's WithConcurrency (0: its default)")
	only := flag.String("only", "", "comma-separated comparisons to run: pull, layout, fetch, unpack (default all)")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this process over the timed comparisons to `file`")
	flag.Parse()
	if err := run(*runs, *layers, *layerMB, *bigMB, *concurrency, *only); err != nil {
		fmt.Fprintln(os.Stderr, "pull:", err)
		os.Exit(1)
	}
}

// contender is one way of pulling an image; run times one pull of it.
type contender struct {
	name string
	run  func(ctx context.Context, img *benchImage) (sample, error)
}

// comparison is Dao's way against another's.
type comparison struct {
	key        string
	other, dao contender
	target     string
	// slower prints Dao's time over the other's (how many times as long), not the other's
	// over Dao's.
	slower bool
}

// bench holds what the contenders share.
type bench struct {
	reg      *daemon.Registry
	work     string
	pullOpts []ctrd.Option
}

func run(runs, layers, layerMB, bigMB, concurrency int, only string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the benchmark runs containerd and needs root")
	}
	for _, p := range []string{"ctr", "skopeo", "containerd", "docker-registry"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("needs %s: %w", p, err)
		}
	}
	ctx := context.Background()
	reg, err := daemon.StartRegistry()
	if err != nil {
		return err
	}
	defer reg.Close()
	work, err := os.MkdirTemp("", "dao-bench-pull-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	b := &bench{reg: reg, work: work}
	if concurrency > 0 {
		b.pullOpts = append(b.pullOpts, ctrd.WithConcurrency(concurrency))
	}

	pusher, err := b.client()
	if err != nil {
		return err
	}
	fmt.Printf("building and pushing the images to %s...\n", reg.Addr)
	multi, err := buildImage(ctx, pusher, fmt.Sprintf("%d layers", layers), reg.Addr+"/bench/layered:1", 1, layers, layerMB)
	if err != nil {
		return err
	}
	defer multi.close()
	single, err := buildImage(ctx, pusher, "1 layer", reg.Addr+"/bench/single:1", 100, 1, bigMB)
	if err != nil {
		return err
	}
	defer single.close()
	pusher.Close()
	imgs := []*benchImage{multi, single}

	comparisons := []comparison{
		{"pull", b.ctrPull(), b.daoPull(), "at least 2.5x as fast", false},
		{"layout", b.skopeo(), b.daoLayout(), "at least as fast", false},
		{"fetch", b.ctrFetch(), b.daoFetch(), "", false},
		{"unpack", b.skopeo(), b.daoPull(), "at most 1.2x", true},
	}
	if only != "" {
		var sel []comparison
		for _, c := range comparisons {
			if strings.Contains(","+only+",", ","+c.key+",") {
				sel = append(sel, c)
			}
		}
		comparisons = sel
	}

	fmt.Printf("%d runs, %s, GOMAXPROCS %d\n", runs, runtime.Version(), runtime.GOMAXPROCS(0))
	for _, img := range imgs {
		fmt.Printf("image %q: %d layers, %.1f MB compressed, %.1f MB of files\n", img.name, len(img.layers), mb(img.compressed), mb(img.uncompressed))
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	type result struct{ other, dao []sample }
	results := map[string]map[*benchImage]*result{}
	for _, cmp := range comparisons {
		results[cmp.key] = map[*benchImage]*result{}
		for _, img := range imgs {
			r := &result{}
			results[cmp.key][img] = r
			// One untimed run of each warms the page cache and the binaries.
			for _, c := range []contender{cmp.other, cmp.dao} {
				if _, err := c.run(ctx, img); err != nil {
					return fmt.Errorf("%s of %s: %w", c.name, img.name, err)
				}
			}
			for i := range runs {
				order := []bool{false, true}
				if i%2 == 1 {
					order = []bool{true, false}
				}
				for _, isDao := range order {
					c := cmp.other
					if isDao {
						c = cmp.dao
					}
					s, err := c.run(ctx, img)
					if err != nil {
						return fmt.Errorf("%s of %s: %w", c.name, img.name, err)
					}
					if isDao {
						r.dao = append(r.dao, s)
					} else {
						r.other = append(r.other, s)
					}
				}
			}
			mo, md := median(r.other), median(r.dao)
			fmt.Printf("\n%s, image %q (median of %d):\n", cmp.key, img.name, runs)
			for _, x := range []struct {
				name string
				s    []sample
				m    sample
			}{{cmp.other.name, r.other, mo}, {cmp.dao.name, r.dao, md}} {
				fmt.Printf("  %-20s %8s  %4.0f MB/s  (runs: %s)\n", x.name, benchutil.Ms(x.m.wall), mbps(img.compressed, x.m.wall), fmtAll(x.s))
				fmt.Printf("  %-20s CPU: itself %s, containerd %s, registry %s\n", "", benchutil.Ms(x.m.self), benchutil.Ms(x.m.containerd), benchutil.Ms(x.m.registry))
			}
			if cmp.slower {
				fmt.Printf("  Dao takes %.2fx as long", float64(md.wall)/float64(mo.wall))
			} else {
				fmt.Printf("  Dao is %.2fx as fast", float64(mo.wall)/float64(md.wall))
			}
			if cmp.target != "" {
				fmt.Printf(" (target: %s)", cmp.target)
			}
			fmt.Println()
		}
	}
	if noisy > 0 {
		fmt.Printf("\nnote: %d timed runs started while the machine was busy with other work\n", noisy)
	}

	var all []*oci.Layer
	for _, img := range imgs {
		all = append(all, img.layers...)
	}
	l, err := measureLimits(all, runtime.GOMAXPROCS(0))
	if err != nil {
		return err
	}
	fmt.Printf("\nmachine limit, over the same blobs in memory:\n")
	fmt.Printf("  sha256: %.0f MB/s on one core, %.0f MB/s on %d\n", l.sha256One/1e6, l.sha256All/1e6, l.cores)
	fmt.Printf("  gunzip (klauspost, compressed bytes in): %.0f MB/s on one core, %.0f MB/s on %d\n", l.gunzipOne/1e6, l.gunzipAll/1e6, l.cores)
	for _, img := range imgs {
		for _, key := range []string{"pull", "unpack"} {
			r := results[key][img]
			if r == nil {
				continue
			}
			lim, md := l.pullLimit(img), median(r.dao)
			fmt.Printf("  %s: pull with unpack of %q: limit %s (sha256 of blob and files, gunzip, on %d cores); Dao Pull %s, %.0f%% of the limit's speed, %.2fx the limit's time\n",
				key, img.name, benchutil.Ms(lim), l.cores, benchutil.Ms(md.wall), 100*float64(lim)/float64(md.wall), float64(md.wall)/float64(lim))
		}
		for _, key := range []string{"layout", "fetch"} {
			if r := results[key][img]; r != nil {
				lim, md := l.fetchLimit(img), median(r.dao)
				fmt.Printf("  %s of %q: limit %s (sha256 of blobs on %d cores); Dao %s, %.0f%% of the limit's speed\n",
					key, img.name, benchutil.Ms(lim), l.cores, benchutil.Ms(md.wall), 100*float64(lim)/float64(md.wall))
			}
		}
	}
	return nil
}

// client returns a registry client for the benchmark's registry. Each timed pull makes a new
// one, as each ctr or skopeo is a new process.
func (b *bench) client() (*registry.Client, error) {
	return registry.NewClient(remote.WithHosts(map[string]remote.HostConfig{b.reg.Addr: {PlainHTTP: true}}))
}

// inContainerd runs pull against a containerd of its own, started before the clock starts and
// removed after it stops; pull returns the sample of the pull it times.
func (b *bench) inContainerd(pull func(ctx context.Context, img *benchImage, d *daemon.Containerd, cl *client.Client) (sample, error)) func(context.Context, *benchImage) (sample, error) {
	return func(ctx context.Context, img *benchImage) (sample, error) {
		d, err := daemon.StartContainerd()
		if err != nil {
			return sample{}, err
		}
		defer d.Close()
		cl, err := client.New(d.Address)
		if err != nil {
			return sample{}, err
		}
		defer cl.Close()
		return pull(namespaces.WithNamespace(ctx, namespace), img, d, cl)
	}
}

// checkUnpacked fails if the image is not in containerd, unpacked into overlayfs.
func checkUnpacked(ctx context.Context, cl *client.Client, ref string) error {
	i, err := cl.GetImage(ctx, ref)
	if err != nil {
		return err
	}
	ok, err := i.IsUnpacked(ctx, "overlayfs")
	if err == nil && !ok {
		err = fmt.Errorf("%s is not unpacked", ref)
	}
	return err
}

func (b *bench) ctrPull() contender {
	return contender{"ctr images pull", b.inContainerd(func(ctx context.Context, img *benchImage, d *daemon.Containerd, cl *client.Client) (sample, error) {
		s, err := timeCommand(d.Dir, b.reg.Dir, "ctr", "--address", d.Address, "-n", namespace, "images", "pull", "--plain-http", img.ref)
		if err != nil {
			return sample{}, err
		}
		return s, checkUnpacked(ctx, cl, img.ref)
	})}
}

func (b *bench) daoPull() contender {
	return contender{"Dao Pull", b.inContainerd(func(ctx context.Context, img *benchImage, d *daemon.Containerd, cl *client.Client) (sample, error) {
		c, err := b.client()
		if err != nil {
			return sample{}, err
		}
		defer c.Close()
		s, err := timeFunc(d.Dir, b.reg.Dir, func() error {
			_, err := c.Pull(ctx, cl, img.ref, b.pullOpts...)
			return err
		})
		if err != nil {
			return sample{}, err
		}
		return s, checkUnpacked(ctx, cl, img.ref)
	})}
}

func (b *bench) ctrFetch() contender {
	return contender{"ctr content fetch", b.inContainerd(func(ctx context.Context, img *benchImage, d *daemon.Containerd, cl *client.Client) (sample, error) {
		return timeCommand(d.Dir, b.reg.Dir, "ctr", "--address", d.Address, "-n", namespace, "content", "fetch", "--plain-http", img.ref)
	})}
}

func (b *bench) daoFetch() contender {
	return contender{"Dao Pull, no unpack", b.inContainerd(func(ctx context.Context, img *benchImage, d *daemon.Containerd, cl *client.Client) (sample, error) {
		c, err := b.client()
		if err != nil {
			return sample{}, err
		}
		defer c.Close()
		return timeFunc(d.Dir, b.reg.Dir, func() error {
			_, err := c.Pull(ctx, cl, img.ref, append(b.pullOpts, ctrd.WithoutUnpack())...)
			return err
		})
	})}
}

// layoutDir is the empty directory a layout pull writes into, removed afterwards.
func (b *bench) layoutDir() (string, func()) {
	dir := filepath.Join(b.work, "layout")
	return dir, func() { os.RemoveAll(dir) }
}

func (b *bench) skopeo() contender {
	return contender{"skopeo copy", func(ctx context.Context, img *benchImage) (sample, error) {
		dir, done := b.layoutDir()
		defer done()
		return timeCommand("", b.reg.Dir, "skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://"+img.ref, "oci:"+dir)
	}}
}

func (b *bench) daoLayout() contender {
	return contender{"Dao PullLayout", func(ctx context.Context, img *benchImage) (sample, error) {
		dir, done := b.layoutDir()
		defer done()
		c, err := b.client()
		if err != nil {
			return sample{}, err
		}
		defer c.Close()
		return timeFunc("", b.reg.Dir, func() error {
			_, err := c.PullLayout(ctx, img.ref, dir)
			return err
		})
	}}
}

// timeCommand times a command as timeFunc times a function; the command's CPU time is its
// own.
func timeCommand(ctrdDir, regDir, name string, args ...string) (sample, error) {
	return timeFunc(ctrdDir, regDir, func() error {
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
		}
		return nil
	})
}

// timeFunc syncs the page cache and waits for a quiet machine, then times f and measures the
// CPU time spent meanwhile by this process and its children, by the containerd whose
// directory is ctrdDir (if any) and by the registry.
func timeFunc(ctrdDir, regDir string, f func() error) (sample, error) {
	syncDisks()
	before := readCPU(ctrdDir, regDir)
	start := time.Now()
	if err := f(); err != nil {
		return sample{}, err
	}
	wall := time.Since(start)
	after := readCPU(ctrdDir, regDir)
	return sample{
		wall:       wall,
		self:       after.self - before.self,
		containerd: after.containerd - before.containerd,
		registry:   after.registry - before.registry,
	}, nil
}

// syncDisks writes dirty pages out, so that the write-back of one run does not slow the next,
// then waits for the machine to be quiet.
func syncDisks() {
	_ = exec.Command("sync").Run()
	if !waitQuiet(30 * time.Second) {
		noisy++
	}
}

// noisy counts the timed runs that started on a busy machine.
var noisy int

func mb(n int64) float64 { return float64(n) / 1e6 }

func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

func fmtAll(ss []sample) string {
	s := make([]string, len(ss))
	for i, x := range ss {
		s[i] = benchutil.Ms(x.wall)
	}
	return strings.Join(s, " ")
}
