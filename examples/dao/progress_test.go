package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/remote"
)

func layerReport(name string, done, total int64, complete bool) remote.Progress {
	return remote.Progress{Action: "fetch", Done: done, Total: total, Complete: complete,
		Descriptor: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString(name), Size: total}}
}

func TestProgressBarsLive(t *testing.T) {
	var out bytes.Buffer
	b := newProgressBars(&out, true, false)
	b.update(layerReport("a", 5_000_000, 10_000_000, false))
	b.update(layerReport("b", 1_000, 1_000, true))
	config := remote.Progress{Action: "fetch", Done: 300, Total: 300,
		Descriptor: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromString("c")}}
	b.update(config) // a fetch reports its bytes before it is complete
	config.Complete = true
	b.update(config)
	b.redraw()
	first := out.String()
	if strings.Count(first, "\n") != 2 || !strings.Contains(first, "Downloading [===============>              ]     5MB / 10MB") ||
		!strings.Contains(first, "Already exists") {
		t.Errorf("first frame:\n%s", first)
	}
	out.Reset()
	b.update(layerReport("a", 10_000_000, 10_000_000, true))
	b.redraw()
	if second := out.String(); !strings.HasPrefix(second, "\x1b[2A") || !strings.Contains(second, "Pull complete  10MB") {
		t.Errorf("second frame does not redraw the two lines in place:\n%q", second)
	}
	if got := b.fetched(); got != 10_000_300 {
		t.Errorf("fetched = %d, want the layer and the config, not the blob that was there", got)
	}
}

// TestProgressBarsNarrow checks that no line is as wide as the terminal, so that none
// wraps and the redraw in place moves up over exactly the lines it drew.
func TestProgressBarsNarrow(t *testing.T) {
	for _, width := range []int{20, 40, 60, 80, 120} {
		var out bytes.Buffer
		b := newProgressBars(&out, true, true)
		b.width = func() int { return width }
		b.update(layerReport("a", 5_000_000, 10_000_000, false))
		b.update(layerReport("b", 1_000, 1_000, true))
		b.update(layerReport("c", 123_456_789, 999_999_999, false))
		b.redraw()
		b.update(layerReport("a", 10_000_000, 10_000_000, true))
		b.redraw()
		frames := strings.Split(out.String(), "\x1b[3A")
		if len(frames) != 2 {
			t.Fatalf("width %d: want two frames of three lines, got %q", width, out.String())
		}
		for _, f := range frames {
			for _, l := range strings.Split(strings.TrimSuffix(f, "\n"), "\n") {
				visible := regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`).ReplaceAllString(l, "")
				if len(visible) >= width {
					t.Errorf("width %d: line of %d columns: %q", width, len(visible), visible)
				}
			}
		}
		if width >= 60 && !strings.Contains(out.String(), "Downloading [") {
			t.Errorf("width %d: no bar:\n%s", width, out.String())
		}
	}
}

// TestProgressBarsOrder checks that the last frame has the layers in the image's order.
func TestProgressBarsOrder(t *testing.T) {
	var out bytes.Buffer
	b := newProgressBars(&out, true, false)
	b.width = func() int { return 0 }
	for _, n := range []string{"c", "a", "b"} {
		b.update(layerReport(n, 10, 10, true))
	}
	b.setOrder([]digest.Digest{digest.FromString("a"), digest.FromString("b"), digest.FromString("c")})
	b.redraw()
	got := out.String()
	ia, ib, ic := strings.Index(got, digest.FromString("a").Encoded()[:12]), strings.Index(got, digest.FromString("b").Encoded()[:12]), strings.Index(got, digest.FromString("c").Encoded()[:12])
	if !(ia < ib && ib < ic) {
		t.Errorf("the layers are not in the image's order:\n%s", got)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0B", 512: "512B", 999: "999B", 1000: "1kB", 1234: "1.23kB", 45_100_000: "45.1MB",
		120_000_000: "120MB", 999_499: "999kB", 2_500_000_000: "2.5GB", -2048: "-2.05kB",
	} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestProgressBarsNotATerminal(t *testing.T) {
	var out bytes.Buffer
	b := newProgressBars(&out, false, false)
	b.start()
	b.update(layerReport("a", 5_000_000, 10_000_000, false))
	if out.Len() != 0 {
		t.Errorf("a line before the layer is done: %q", out.String())
	}
	b.update(layerReport("a", 10_000_000, 10_000_000, true))
	b.update(layerReport("a", 10_000_000, 10_000_000, true))
	b.stop()
	if got := out.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "Pull complete") || strings.Contains(got, "\x1b") {
		t.Errorf("output %q: want one plain line", got)
	}
}

func TestRegistriesConfigHosts(t *testing.T) {
	cfg := &registriesConfig{
		Mirrors: map[string]mirrorConfig{
			"docker.io":           {Endpoint: []string{"http://127.0.0.1:5001/", "https://mirror.example.com"}},
			"registry.local:5000": {Endpoint: []string{"http://registry.local:5000"}},
		},
		Configs: map[string]registryConfig{"ghcr.io": {}},
	}
	c := cfg.Configs["ghcr.io"]
	c.Auth.Username, c.Auth.Password = "ci", "secret"
	cfg.Configs["ghcr.io"] = c
	hosts, creds, err := cfg.hosts([]string{"10.0.0.1:5000"})
	if err != nil {
		t.Fatal(err)
	}
	if m := hosts["docker.io"].Mirrors; len(m) != 2 || m[0].URL != "http://127.0.0.1:5001" || m[1].URL != "https://mirror.example.com" {
		t.Errorf("docker.io mirrors = %+v", m)
	}
	if h := hosts["registry.local:5000"]; !h.PlainHTTP || len(h.Mirrors) != 0 {
		t.Errorf("an endpoint on the registry's own host: %+v, want plain HTTP and no mirror", h)
	}
	if !hosts["10.0.0.1:5000"].PlainHTTP {
		t.Error("--insecure host is not plain HTTP")
	}
	if creds["ghcr.io"] != (remote.Credentials{Username: "ci", Password: "secret"}) {
		t.Errorf("credentials = %+v", creds)
	}
	if _, _, err := (&registriesConfig{}).hosts([]string{"http://x"}); err == nil || !strings.Contains(err.Error(), `--insecure "http://x"`) {
		t.Errorf("--insecure with a URL: err = %v", err)
	}
}
