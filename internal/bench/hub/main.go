// Command hub measures Dao's registry server (registry/server over its file system store)
// side by side with Debian's docker-registry 2.8, both on loopback, each in a process of
// its own and with its storage in a new temporary directory:
//
//	go run ./internal/bench/hub [-blobs 8] [-blob-mib 16] [-clients 50] [-duration 5s] [-runs 3]
//	                            [-layers 8] [-layer-mb 25] [-big-mb 200]
//
// Images: the pull benchmark's two images (internal/bench/pull: -layers layers of about
// -layer-mb MB compressed, and one layer of about -big-mb MB, files about half
// compressible, gzip by Dao's image builder) are pushed with Dao's client (registry/remote:
// blobs at once, then the manifest) to a new repository of each run and pulled back (the
// manifest, then every blob at once, verified as read); rates are compressed MB (10^6
// bytes) over the wall time. -layers 0 skips them.
//
// Blob push: -blobs blobs of -blob-mib MiB of random bytes are pushed at once, each as a
// POST that opens a session and a PUT ?digest= with the whole body (as docker and
// containerd push a layer); the rate is their bytes over the wall time. Blob pull: the same
// blobs are read back at once with GET. Manifest GETs: -clients clients GET one manifest
// by tag in a loop for -duration; the rate is GETs per second, with the 50th and 99th
// percentiles of their latency. The two registries alternate within each of -runs runs;
// medians are printed. The hub runs as this program again (-serve), so that its CPU time
// and the load generator's are apart, as docker-registry's are.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/internal/bench/benchutil"
	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/registry/remote"
	"github.com/opendao/dao/registry/server"
)

func main() {
	serve := flag.String("serve", "", "run the hub on this root (the child process)")
	blobs := flag.Int("blobs", 8, "blobs pushed and pulled at once")
	blobMiB := flag.Int("blob-mib", 16, "size of each blob, MiB")
	clients := flag.Int("clients", 50, "concurrent clients of the manifest GETs")
	duration := flag.Duration("duration", 5*time.Second, "how long the manifest GETs run")
	runs := flag.Int("runs", 3, "runs; medians are printed")
	layers := flag.Int("layers", 8, "layers of the layered image; 0 skips the images")
	layerMB := flag.Int("layer-mb", 25, "compressed size of each of its layers, in MB")
	bigMB := flag.Int("big-mb", 200, "compressed size of the single-layer image, in MB")
	flag.Parse()
	if *serve != "" {
		if err := child(*serve); err != nil {
			fmt.Fprintln(os.Stderr, "hub child:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*blobs, *blobMiB<<20, *clients, *duration, *runs, *layers, *layerMB, *bigMB); err != nil {
		fmt.Fprintln(os.Stderr, "bench hub:", err)
		os.Exit(1)
	}
}

// child serves the hub on a free port of 127.0.0.1 and prints its address.
func child(root string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return server.ListenAndServe(ctx, server.Config{Addr: "127.0.0.1:0", Root: root}, func(a net.Addr) {
		fmt.Println(a.String())
	})
}

// startHub runs the hub as a child process and returns its address and a stop function.
func startHub() (string, func(), error) {
	root, err := os.MkdirTemp("", "dao-bench-hub-")
	if err != nil {
		return "", nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(exe, "-serve", root)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		os.RemoveAll(root)
	}
	line := make([]byte, 64)
	n, err := out.Read(line)
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("hub child: %w", err)
	}
	return strings.TrimSpace(string(line[:n])), stop, nil
}

type result struct {
	push, pull   float64   // MiB/s
	imgPush      []float64 // MB/s, per image
	imgPull      []float64
	rate         float64 // manifest GETs/s
	p50, p99     time.Duration
	getsMeasured int
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128, MaxConnsPerHost: 0, DisableCompression: true}}

func run(nblobs, size, clients int, dur time.Duration, runs, layers, layerMB, bigMB int) error {
	reg, err := daemon.StartRegistry()
	if err != nil {
		return err
	}
	defer reg.Close()
	hubAddr, stopHub, err := startHub()
	if err != nil {
		return err
	}
	defer stopHub()
	data := make([][]byte, nblobs)
	for i := range data {
		data[i] = make([]byte, size)
		rand.Read(data[i])
	}
	var imgs []*benchImage
	if layers > 0 {
		fmt.Println("building the images...")
		ctx := context.Background()
		multi, err := buildImage(ctx, fmt.Sprintf("%d layers", layers), 1, layers, layerMB)
		if err != nil {
			return err
		}
		defer multi.close()
		single, err := buildImage(ctx, "1 layer", 100, 1, bigMB)
		if err != nil {
			return err
		}
		defer single.close()
		imgs = []*benchImage{multi, single}
	}
	rc, err := remote.NewClient(remote.WithHosts(map[string]remote.HostConfig{hubAddr: {PlainHTTP: true}, reg.Addr: {PlainHTTP: true}}))
	if err != nil {
		return err
	}
	defer rc.Close()
	targets := []struct{ name, addr string }{{"dao hub", hubAddr}, {"docker-registry 2.8", reg.Addr}}
	results := map[string][]result{}
	for r := 0; r < runs; r++ {
		order := targets
		if r%2 == 1 {
			order = []struct{ name, addr string }{targets[1], targets[0]}
		}
		for _, tg := range order {
			res, err := measure(tg.addr, fmt.Sprintf("bench/run%d", r), data, clients, dur)
			if err != nil {
				return fmt.Errorf("%s: %w", tg.name, err)
			}
			for i, img := range imgs {
				repo := fmt.Sprintf("%s/bench/image%d-run%d", tg.addr, i, r)
				push, pull, err := imageRates(context.Background(), rc, repo+":1", repo, img)
				if err != nil {
					return fmt.Errorf("%s: image %q: %w", tg.name, img.name, err)
				}
				res.imgPush = append(res.imgPush, push)
				res.imgPull = append(res.imgPull, pull)
			}
			results[tg.name] = append(results[tg.name], res)
		}
	}
	fmt.Printf("%d blobs of %d MiB at once; %d clients of manifest GETs for %s; medians of %d runs\n", nblobs, size>>20, clients, dur, runs)
	fmt.Printf("%-22s %12s %12s %14s %10s %10s\n", "registry", "push MiB/s", "pull MiB/s", "manifest GET/s", "p50", "p99")
	for _, tg := range targets {
		rs := results[tg.name]
		med := func(f func(result) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		p50 := make([]time.Duration, len(rs))
		p99 := make([]time.Duration, len(rs))
		for i, r := range rs {
			p50[i], p99[i] = r.p50, r.p99
		}
		fmt.Printf("%-22s %12.0f %12.0f %14.0f %10s %10s\n", tg.name,
			med(func(r result) float64 { return r.push }), med(func(r result) float64 { return r.pull }),
			med(func(r result) float64 { return r.rate }), benchutil.Ms(benchutil.Median(p50)), benchutil.Ms(benchutil.Median(p99)))
	}
	if len(imgs) == 0 {
		return nil
	}
	fmt.Printf("\nimages pushed and pulled with Dao's client, compressed MB/s, medians of %d runs\n", runs)
	fmt.Printf("%-22s", "registry")
	for _, img := range imgs {
		fmt.Printf(" %14s %14s", fmt.Sprintf("%s push", img.name), fmt.Sprintf("%s pull", img.name))
	}
	fmt.Println()
	for _, tg := range targets {
		rs := results[tg.name]
		fmt.Printf("%-22s", tg.name)
		for i := range imgs {
			push := make([]float64, len(rs))
			pull := make([]float64, len(rs))
			for j, r := range rs {
				push[j], pull[j] = r.imgPush[i], r.imgPull[i]
			}
			slices.Sort(push)
			slices.Sort(pull)
			fmt.Printf(" %14.0f %14.0f", push[len(push)/2], pull[len(pull)/2])
		}
		fmt.Println()
	}
	for _, img := range imgs {
		fmt.Printf("image %q: %d layers, %.1f MB compressed\n", img.name, len(img.layers), float64(img.compressed)/1e6)
	}
	return nil
}

func measure(addr, repo string, data [][]byte, clients int, dur time.Duration) (result, error) {
	var res result
	base := "http://" + addr
	total := 0
	for _, d := range data {
		total += len(d)
	}
	// Push.
	start := time.Now()
	if err := parallel(len(data), func(i int) error { return pushBlob(base, repo, data[i]) }); err != nil {
		return res, err
	}
	res.push = float64(total) / (1 << 20) / time.Since(start).Seconds()
	// Pull.
	start = time.Now()
	if err := parallel(len(data), func(i int) error {
		resp, err := client.Get(base + "/v2/" + repo + "/blobs/" + digest.FromBytes(data[i]).String())
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil || resp.StatusCode != 200 || n != int64(len(data[i])) {
			return fmt.Errorf("blob GET: %d, %d bytes, %v", resp.StatusCode, n, err)
		}
		return nil
	}); err != nil {
		return res, err
	}
	res.pull = float64(total) / (1 << 20) / time.Since(start).Seconds()
	// A manifest of one config and the blobs as layers.
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	if err := pushBlob(base, repo, cfg); err != nil {
		return res, err
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}}
	m.SchemaVersion = 2
	for _, d := range data {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(d), Size: int64(len(d))})
	}
	raw, _ := json.Marshal(m)
	req, _ := http.NewRequest("PUT", base+"/v2/"+repo+"/manifests/1", bytes.NewReader(raw))
	req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
	resp, err := client.Do(req)
	if err != nil {
		return res, err
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		return res, fmt.Errorf("manifest PUT: %d", resp.StatusCode)
	}
	// Manifest GETs.
	var mu sync.Mutex
	var lat []time.Duration
	deadline := time.Now().Add(dur)
	err = parallel(clients, func(int) error {
		var mine []time.Duration
		for time.Now().Before(deadline) {
			t0 := time.Now()
			req, _ := http.NewRequest("GET", base+"/v2/"+repo+"/manifests/1", nil)
			req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				return fmt.Errorf("manifest GET: %d %v", resp.StatusCode, err)
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return res, err
	}
	res.rate = float64(len(lat)) / dur.Seconds()
	res.p50 = benchutil.Percentile(lat, 50)
	res.p99 = benchutil.Percentile(lat, 99)
	res.getsMeasured = len(lat)
	return res, nil
}

// pushBlob pushes data as docker does: POST a session, PUT ?digest= with the body.
func pushBlob(base, repo string, data []byte) error {
	resp, err := client.Post(base+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		return fmt.Errorf("upload POST: %d", resp.StatusCode)
	}
	loc, err := resp.Location()
	if err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", digest.FromBytes(data).String())
	loc.RawQuery = q.Encode()
	req, _ := http.NewRequest("PUT", loc.String(), bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		return fmt.Errorf("upload PUT: %d", resp.StatusCode)
	}
	return nil
}

func parallel(n int, fn func(i int) error) error {
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() { errs <- fn(i) }()
	}
	var first error
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
