package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/internal/testutil"
)

// hubProcess is examples/hub running as a process of its own on a root.
type hubProcess struct {
	cmd  *exec.Cmd
	addr string
}

func buildHub(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hub")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../../examples/hub").CombinedOutput(); err != nil {
		t.Fatalf("go build examples/hub: %v\n%s", err, out)
	}
	return bin
}

func startHubProcess(t *testing.T, bin, root string) *hubProcess {
	t.Helper()
	cmd := exec.Command(bin, "--addr", "127.0.0.1:0", "--root", root)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &hubProcess{cmd: cmd}
	t.Cleanup(func() { p.kill() })
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- line
		io.Copy(io.Discard, out)
	}()
	select {
	case line := <-lines:
		i := strings.LastIndex(line, "http://")
		if i < 0 {
			t.Fatalf("hub said %q", line)
		}
		p.addr = strings.TrimSpace(line[i:])
	case <-time.After(30 * time.Second):
		t.Fatal("hub did not start within 30s")
	}
	return p
}

// kill kills the process with SIGKILL, as a crash would, and reaps it.
func (p *hubProcess) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// TestKilledMidUpload kills the server process with SIGKILL in the middle of a large
// streamed PATCH, starts a new one on the same root, and checks that the session resumes
// from what the first recorded, that the partial blob is never served, and that the blob
// finished through the new process is whole.
func TestKilledMidUpload(t *testing.T) {
	testutil.RequireIntegration(t, "go")
	bin := buildHub(t)
	root := t.TempDir()
	data := make([]byte, 80<<20)
	rand.Read(data)
	d := digest.FromBytes(data)
	hc := &http.Client{Timeout: time.Minute}

	p1 := startHubProcess(t, bin, root)
	resp, err := hc.Post(p1.addr+"/v2/app/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || loc == "" {
		t.Fatalf("POST: %d %q", resp.StatusCode, loc)
	}
	id := loc[strings.LastIndex(loc, "/")+1:]
	// Stream the blob; once 40 MiB have reached the data file, kill the server.
	pr, pw := io.Pipe()
	go func() {
		pw.Write(data[:60<<20])
		<-t.Context().Done() // hold the request open until the kill breaks it
		pw.Close()
	}()
	req, _ := http.NewRequest("PATCH", p1.addr+loc, pr)
	req.Header.Set("Content-Type", "application/octet-stream")
	patched := make(chan error, 1)
	go func() {
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("PATCH answered %d", resp.StatusCode)
		}
		patched <- err
	}()
	dataFile := filepath.Join(root, "uploads", id, "data")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if fi, err := os.Stat(dataFile); err == nil && fi.Size() >= 40<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the upload did not reach 40 MiB within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	p1.kill()
	select {
	case err := <-patched:
		t.Logf("the interrupted PATCH: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the PATCH did not end after the kill")
	}

	p2 := startHubProcess(t, bin, root)
	get := func(method, path string, body []byte, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, p2.addr+path, bytes.NewReader(body))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := get("HEAD", "/v2/app/blobs/"+d.String(), nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("partial blob answered %d", resp.StatusCode)
	}
	st := get("GET", loc, nil)
	rg := st.Header.Get("Range")
	if st.StatusCode != http.StatusNoContent || !strings.HasPrefix(rg, "0-") {
		t.Fatalf("status after restart: %d %q", st.StatusCode, rg)
	}
	last, _ := strconv.ParseInt(strings.TrimPrefix(rg, "0-"), 10, 64)
	have := last + 1
	if have < 16<<20 || have > 60<<20 {
		t.Fatalf("the new process resumes at %d bytes; the first had recorded at least 16 MiB of 40", have)
	}
	t.Logf("killed after >= 40 MiB; resumed at %d MiB", have>>20)
	if resp := get("PATCH", loc, data[have:], "Content-Range", fmt.Sprintf("%d-%d", have, len(data)-1)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("resumed PATCH: %d", resp.StatusCode)
	}
	if resp := get("PUT", loc+"?digest="+d.String(), nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	resp = get("GET", "/v2/app/blobs/"+d.String(), nil)
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("blob after resume: %d, %d bytes, %v", resp.StatusCode, len(got), err)
	}
}
