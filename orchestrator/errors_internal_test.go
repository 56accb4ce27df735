package orchestrator

import (
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/hashicorp/go-multierror"
)

func TestJoinErrorsSeesEachOne(t *testing.T) {
	t.Parallel()
	if err := joinErrors(nil, nil); err != nil {
		t.Errorf("joinErrors(nil, nil) = %v, want nil", err)
	}
	if err := joinErrors(nil, ErrNotFound); err != ErrNotFound {
		t.Errorf("joinErrors(nil, ErrNotFound) = %v, want ErrNotFound itself", err)
	}
	err := joinErrors(ErrNotFound, nil, fs.ErrPermission)
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, fs.ErrPermission) {
		t.Errorf("%v: errors.Is does not see both", err)
	}
	if got, want := err.Error(), "orchestrator: not found; permission denied"; got != want {
		t.Errorf("text %q, want %q", got, want)
	}
}

// A file whose two meta pages are both damaged says what is wrong with each, and
// errors.As finds both.
func TestBothMetaPagesDamagedNamesEach(t *testing.T) {
	t.Parallel()
	_, err := checkBoltMetas(bytes.NewReader(make([]byte, 64<<10)), 64<<10)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("zeros: %v, want ErrCorrupt", err)
	}
	var m *multierror.Error
	if !errors.As(err, &m) || len(m.Errors) != 2 {
		t.Fatalf("zeros: %v: want a *multierror.Error of the two pages", err)
	}
	if !strings.Contains(m.Errors[0].Error(), "page 0") || !strings.Contains(m.Errors[1].Error(), "page 1") {
		t.Errorf("errors %q, want one per page", m.Errors)
	}
}
