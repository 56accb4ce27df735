package registry_test

import (
	"context"
	"errors"
	"testing"

	"github.com/opendao/dao/registry"
)

// Import checks its arguments before it talks to containerd; import_integration_test.go
// covers the rest against a real daemon.
func TestImportRefusesBadArguments(t *testing.T) {
	ctx := context.Background()
	img := testImage(t, "amd64")
	tests := []struct {
		name      string
		imageName string
		opts      []registry.ImportOption
		want      error
	}{
		{"bad name", "Not A Name", nil, registry.ErrInvalidName},
		{"empty name", "", nil, registry.ErrInvalidName},
		{"empty label key", "example.com/app:1", []registry.ImportOption{registry.WithImageLabels(map[string]string{"": "x"})}, registry.ErrInvalidOption},
		{"no client", "example.com/app:1", nil, registry.ErrInvalidOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := registry.Import(ctx, nil, tt.imageName, img, tt.opts...); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}
