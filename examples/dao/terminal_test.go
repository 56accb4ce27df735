package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/build"
	regoci "github.com/opendao/dao/registry/oci"
)

// The tests of this file run the dao program in a terminal of tmux, 60 and 120 columns
// wide, type into it as a person would, and read the screen that person sees.

// buildDao builds the dao program for t.
func buildDao(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dao")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// screen is a shell in a terminal of tmux, on a tmux server of its own (its socket in the
// test's directory) that ends with the test.
type screen struct {
	t      *testing.T
	socket string
	width  int
}

func newScreen(t *testing.T, width int) *screen {
	t.Helper()
	s := &screen{t: t, socket: filepath.Join(t.TempDir(), "tmux"), width: width}
	cmd := exec.Command("tmux", "-S", s.socket, "-f", "/dev/null", "new-session", "-d",
		"-x", fmt.Sprint(width), "-y", "50", "-s", "t", "env", "PS1=$ ", "TERM=xterm-256color", "sh")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("tmux", "-S", s.socket, "kill-server").Run() })
	s.waitFor(`(?m)^\$\s*$`, 10*time.Second)
	return s
}

// send types keys (tmux send-keys: "Enter" is the key, other words are typed as they are).
func (s *screen) send(keys ...string) {
	s.t.Helper()
	if out, err := exec.Command("tmux", append([]string{"-S", s.socket, "send-keys", "-t", "t"}, keys...)...).CombinedOutput(); err != nil {
		s.t.Fatalf("tmux send-keys: %v\n%s", err, out)
	}
}

// run types a command line and Enter, after clearing the screen.
func (s *screen) run(line string) {
	s.t.Helper()
	s.send("clear", "Enter")
	s.waitFor(`\A\$\z`, 10*time.Second) // the prompt alone on a clear screen
	s.send("-l", line)
	s.send("Enter")
}

// text is what the terminal shows, without trailing blank lines, with the lines the
// terminal wrapped joined again (and so longer than its width).
func (s *screen) text() string {
	s.t.Helper()
	out, err := exec.Command("tmux", "-S", s.socket, "capture-pane", "-p", "-J", "-t", "t").Output()
	if err != nil {
		s.t.Fatalf("tmux capture-pane: %v", err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		lines = append(lines, strings.TrimRight(l, " "))
	}
	return strings.Join(lines, "\n")
}

// waitFor waits until the screen shows re (a regular expression), and returns the screen.
func (s *screen) waitFor(re string, timeout time.Duration) string {
	s.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		text := s.text()
		if rx.MatchString(text) {
			return text
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("after %s the %d-column screen does not show %q:\n%s", timeout, s.width, re, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// status waits for the command to end and returns its exit status, as the shell says it.
func (s *screen) status() string {
	s.t.Helper()
	s.waitFor(`\n\$$`, time.Minute) // the shell's prompt again, on the last line
	s.send("-l", "echo status=$?")
	s.send("Enter")
	m := regexp.MustCompile(`(?m)^status=(\d+)$`).FindStringSubmatch(s.waitFor(`(?m)^status=\d+$`, time.Minute))
	return m[1]
}

// checkWidth fails when a line of text is wider than the screen could show unwrapped.
func (s *screen) checkWidth(text string) {
	s.t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if len(l) >= s.width {
			s.t.Errorf("a line fills the %d columns, so the terminal may wrap it: %q", s.width, l)
		}
	}
}

// multiLayerImage is an image of three layers of 4 MiB of random bytes each.
func multiLayerImage(t *testing.T) *regoci.Image {
	t.Helper()
	var layers []*regoci.Layer
	for i := range 3 {
		lb, err := build.NewLayerBuilder()
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, 4<<20)
		rand.Read(data)
		if err := lb.AddFile(fmt.Sprintf("data%d", i), 0o644, data); err != nil {
			t.Fatal(err)
		}
		layer, err := lb.Build(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, layer)
	}
	img, err := regoci.NewImage(layers, ocispec.ImageConfig{Cmd: []string{"/data0"}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestTerminalPull pulls an image of three layers in terminals of 60 and 120 columns: each
// layer has one line, in the image's order, that fits the width, however the redraws went.
func TestTerminalPull(t *testing.T) {
	testutil.RequireIntegration(t, "go", "tmux", "containerd", "runc", "docker-registry")
	bin := buildDao(t)
	e := &pullEnv{testutil.NewPullEnv(t)}
	config := filepath.Join(t.TempDir(), "registries.yaml")
	if err := os.WriteFile(config, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, width := range []int{60, 120} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			// An image of its own each time: the content store is shared by the namespaces.
			img := multiLayerImage(t)
			ref := e.Reg.Ref(fmt.Sprintf("tools/layers:%d", width))
			e.Push(t, ref, img)
			var ids []string
			for _, l := range img.Manifest().Layers {
				ids = append(ids, l.Digest.Encoded()[:12])
			}
			ns := fmt.Sprintf("%s-%d", testutil.Namespace, width)
			s := newScreen(t, width)
			// The flags after the reference, as docker takes them.
			s.run(fmt.Sprintf("%s pull %s --address %s -n %s --config %s --insecure %s", bin, ref, e.Ctrd.Address, ns, config, e.Reg.Addr))
			text := s.waitFor(`(?m)^Pulled `, 2*time.Minute)
			if got := s.status(); got != "0" {
				t.Fatalf("dao pull exited with %s:\n%s", got, text)
			}
			t.Logf("the %d-column screen:\n%s", width, text)
			// The lines of the layers: from after the command line to "Pulled".
			body := text[strings.Index(text, "Pulling "):strings.Index(text, "Pulled ")]
			s.checkWidth(body)
			last := -1
			for _, id := range ids {
				if n := strings.Count(text, id); n != 1 {
					t.Errorf("layer %s is on %d lines of the screen, want 1", id, n)
				}
				i := strings.Index(text, id)
				if i < last {
					t.Errorf("layer %s is above the layer before it in the image", id)
				}
				last = i
				line := text[i:]
				line = line[:strings.IndexByte(line, '\n')]
				if !strings.Contains(line, "Pull complete") {
					t.Errorf("the line of layer %s is %q, want Pull complete", id, line)
				}
			}
			if !regexp.MustCompile(`3 layers of 12\.\dMB`).MatchString(text) {
				t.Errorf("the summary does not say 3 layers of 12.xMB")
			}
		})
	}
}

// TestTerminalClean runs dao clean in terminals of 60 and 120 columns: it lists what it
// would remove and asks; N removes nothing, y removes it.
func TestTerminalClean(t *testing.T) {
	testutil.RequireIntegration(t, "go", "tmux", "containerd", "runc")
	bin := buildDao(t)
	for _, width := range []int{60, 120} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			n := newNode(t)
			s := newScreen(t, width)
			dao := fmt.Sprintf("%s --address %s -n %s", bin, n.ctrd.Address, testutil.Namespace)
			before := n.state()

			s.run(dao + " ps -a")
			text := s.waitFor(`(?m)^done .*stopped`, time.Minute)
			if !regexp.MustCompile(`(?m)^CONTAINER +IMAGE +STATE`).MatchString(text) || !regexp.MustCompile(`(?m)^web .*running`).MatchString(text) {
				t.Errorf("dao ps -a:\n%s", text)
			}

			// For scripts: one JSON object a line, with docker's field names.
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(n.dao("ps", "-a", "-o", "json")), "\n") {
				var e struct{ ID, Image, State string }
				if err := json.Unmarshal([]byte(l), &e); err != nil {
					t.Fatalf("dao ps -o json: %v in %q", err, l)
				}
				got = append(got, e.ID+" "+e.State)
			}
			if want := []string{"done stopped", "web running"}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("dao ps -a -o json: got %v, want %v", got, want)
			}
			if out := n.dao("ps", "-aq"); out != "done\nweb\n" {
				t.Errorf("dao ps -aq = %q", out)
			}

			s.run(dao + " clean")
			text = s.waitFor(`Are you sure you want to continue\? \[y/N\]\s*$`, time.Minute)
			if !strings.Contains(text, "Would free ") || !regexp.MustCompile(`(?m)^container +done`).MatchString(text) {
				t.Errorf("dao clean does not show what it would remove before it asks:\n%s", text)
			}
			s.send("N", "Enter")
			text = s.waitFor(`dao clean: cancelled: nothing was removed`, time.Minute)
			if got := s.status(); got != "1" {
				t.Errorf("dao clean answered N exited with %s, want 1", got)
			}
			if strings.Contains(text, "no answer on stdin") {
				t.Errorf("on a terminal, N is an answer:\n%s", text)
			}
			// (Containers and images only: containerd's garbage collector may still be
			// removing the snapshots and content that newNode left unreferenced.)
			if after := n.state(); fmt.Sprint(after.Containers, after.Images) != fmt.Sprint(before.Containers, before.Images) {
				t.Errorf("dao clean answered N removed something:\nbefore %v\nafter  %v", before, after)
			}

			// Ctrl-C at the question: nothing removed either.
			s.run(dao + " clean")
			s.waitFor(`\[y/N\]\s*$`, time.Minute)
			s.send("C-c")
			s.waitFor(`\[y/N\] (\^C)?\n+dao clean: cancelled: nothing was removed`, time.Minute)
			if got := s.status(); got != "1" {
				t.Errorf("dao clean interrupted at the question exited with %s, want 1", got)
			}
			if _, ok := n.state().Containers["done"]; !ok {
				t.Errorf("dao clean interrupted at the question removed the stopped container")
			}

			s.run(dao + " clean")
			s.waitFor(`\[y/N\]\s*$`, time.Minute)
			s.send("y", "Enter")
			text = s.waitFor(`(?m)^Freed `, time.Minute)
			if got := s.status(); got != "0" {
				t.Errorf("dao clean answered y exited with %s:\n%s", got, text)
			}
			t.Logf("the %d-column screen:\n%s", width, text)
			if _, ok := n.state().Containers["done"]; ok {
				t.Errorf("dao clean answered y left the stopped container")
			}

			// With stdin not a terminal and no answer there, it asks, and refuses.
			s.run(dao + " clean -a </dev/null")
			text = s.waitFor(`no answer on stdin: give -f to clean without asking`, time.Minute)
			if got := s.status(); got != "1" {
				t.Errorf("dao clean </dev/null exited with %s:\n%s", got, text)
			}
		})
	}
}
