package edge

import (
	"context"
	"errors"
	"math"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opendao/dao"
)

// TestResourceConversionsNeverWrap: milliCPU*100000/1000 overflowed int64 for limits above
// 9.2e13 millicores, to a negative quota that runc takes as "no limit". Without the spec's
// validation in front, the conversion itself refuses what the kernel cannot honour.
func TestResourceConversionsNeverWrap(t *testing.T) {
	t.Parallel()
	apply := func(r dao.Resources) (*specs.Spec, error) {
		s := &specs.Spec{Linux: &specs.Linux{}}
		for _, o := range resourceOpts(r) {
			if err := o(context.Background(), nil, nil, s); err != nil {
				return nil, err
			}
		}
		return s, nil
	}
	for _, milli := range []int64{10, 1500, 100_000_000_000, dao.MaxMilliCPU} {
		s, err := apply(dao.Resources{MilliCPU: milli})
		if err != nil {
			t.Fatalf("%d millicores: %v", milli, err)
		}
		if q := *s.Linux.Resources.CPU.Quota; q != milli*100 || q <= 0 {
			t.Errorf("%d millicores: quota %d, want %d", milli, q, milli*100)
		}
	}
	for _, r := range []dao.Resources{
		{MilliCPU: math.MaxInt64}, {MilliCPU: 1e14}, {MilliCPU: dao.MaxMilliCPU + 1},
		{Memory: math.MaxInt64}, {Pids: dao.MaxPids + 1}, {Pids: math.MaxInt64},
	} {
		if s, err := apply(r); !errors.Is(err, dao.ErrInvalid) {
			t.Errorf("%+v: spec %+v, error %v; want an error wrapping dao.ErrInvalid", r, s, err)
		}
	}
	s, err := apply(dao.Resources{Memory: dao.MaxMemory, Pids: dao.MaxPids})
	if err != nil || *s.Linux.Resources.Memory.Limit != dao.MaxMemory || *s.Linux.Resources.Memory.Swap != dao.MaxMemory ||
		*s.Linux.Resources.Pids.Limit != dao.MaxPids {
		t.Errorf("largest memory and pids: %+v, %v", s.Linux.Resources, err)
	}
}

// TestCapabilityNamesAreNeverDropped: a name runc does not know it drops without a word;
// the spec option refuses it, and one the node's kernel lacks.
func TestCapabilityNamesAreNeverDropped(t *testing.T) {
	t.Parallel()
	apply := func(add, drop []string) error {
		s := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}}}}
		return withCapabilities(add, drop)(context.Background(), nil, nil, s)
	}
	for _, tc := range []struct{ add, drop []string }{
		{[]string{"NOT_A_CAP"}, nil},
		{nil, []string{"CAP_ALL"}},
		{[]string{"NET ADMIN"}, []string{"ALL"}},
	} {
		if err := apply(tc.add, tc.drop); !errors.Is(err, dao.ErrInvalid) {
			t.Errorf("add %q drop %q: %v, want an error wrapping dao.ErrInvalid", tc.add, tc.drop, err)
		}
	}
	if err := apply([]string{"NET_ADMIN"}, []string{"all"}); err != nil {
		t.Errorf("valid names: %v", err)
	}
}
