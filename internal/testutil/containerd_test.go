package testutil_test

import (
	"context"
	"testing"

	"github.com/opendao/dao/internal/testutil"
)

func TestContainerdStartsAndRestarts(t *testing.T) {
	c := testutil.StartContainerd(t)
	ctx := c.Context(context.Background())
	v, err := c.Client.Version(ctx)
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	if v.Version == "" {
		t.Errorf("empty containerd version")
	}
	c.Restart()
	if _, err := c.Client.Version(ctx); err != nil {
		t.Fatalf("Version after restart: %v", err)
	}
}
