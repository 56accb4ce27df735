package ctrd_test

import (
	"context"
	"errors"
	"testing"

	"github.com/opendao/dao/registry/internal/regtest"

	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/name"
)

// Import checks its arguments before it talks to containerd; import_integration_test.go
// covers the rest against a real daemon.
func TestImportRefusesBadArguments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	img := regtest.Image(t, "amd64")
	tests := []struct {
		name      string
		imageName string
		opts      []ctrd.Option
		want      error
	}{
		{"bad name", "Not A Name", nil, name.ErrInvalidName},
		{"empty name", "", nil, name.ErrInvalidName},
		{"empty label key", "example.com/app:1", []ctrd.Option{ctrd.WithLabels(map[string]string{"": "x"})}, ctrd.ErrInvalidOption},
		{"no client", "example.com/app:1", nil, ctrd.ErrInvalidOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ctrd.Import(ctx, nil, tt.imageName, img, tt.opts...); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}
