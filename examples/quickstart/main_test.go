package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opendao/dao/internal/testutil"
)

// TestQuickstart runs the whole quickstart against a private containerd, as `make demo` does,
// and checks what it prints.
func TestQuickstart(t *testing.T) {
	testutil.RequireIntegration(t, "containerd", "runc", "go")
	out := captureStdout(t, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := run(ctx, ""); err != nil {
			t.Errorf("run: %v", err)
		}
	})
	for _, want := range []string{
		"3 replicas running and healthy",
		", version v1",
		"is back: new pid",
		"event: updater: update web: starting new tasks for slot 3",
		"update completed in",
		", version v2",
		"all containers removed",
		"quickstart finished in",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	var buf bytes.Buffer
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(&buf, r)
		close(copied)
	}()
	defer func() {
		os.Stdout = saved
	}()
	f()
	w.Close()
	<-copied
	return buf.String()
}
