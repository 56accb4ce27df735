package dao_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao"
)

func TestResourcesAddSub(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		r, o     dao.Resources
		sum, dif dao.Resources
	}{
		{
			name: "zero",
		},
		{
			name: "field by field",
			r:    dao.Resources{MilliCPU: 1500, Memory: 2 * dao.GiB, Pids: 100},
			o:    dao.Resources{MilliCPU: 500, Memory: 512 * dao.MiB, Pids: 30},
			sum:  dao.Resources{MilliCPU: 2000, Memory: 2*dao.GiB + 512*dao.MiB, Pids: 130},
			dif:  dao.Resources{MilliCPU: 1000, Memory: 1536 * dao.MiB, Pids: 70},
		},
		{
			name: "fields set on one side only",
			r:    dao.Resources{MilliCPU: 1000},
			o:    dao.Resources{Memory: dao.GiB},
			sum:  dao.Resources{MilliCPU: 1000, Memory: dao.GiB},
			dif:  dao.Resources{MilliCPU: 1000, Memory: -dao.GiB},
		},
		{
			name: "sub goes negative",
			r:    dao.Resources{MilliCPU: 100, Memory: dao.MiB, Pids: 1},
			o:    dao.Resources{MilliCPU: 300, Memory: 3 * dao.MiB, Pids: 5},
			sum:  dao.Resources{MilliCPU: 400, Memory: 4 * dao.MiB, Pids: 6},
			dif:  dao.Resources{MilliCPU: -200, Memory: -2 * dao.MiB, Pids: -4},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.sum, tc.r.Add(tc.o)); diff != "" {
				t.Errorf("%+v.Add(%+v) (-want +got):\n%s", tc.r, tc.o, diff)
			}
			if diff := cmp.Diff(tc.dif, tc.r.Sub(tc.o)); diff != "" {
				t.Errorf("%+v.Sub(%+v) (-want +got):\n%s", tc.r, tc.o, diff)
			}
			if diff := cmp.Diff(tc.r, tc.r.Add(tc.o).Sub(tc.o)); diff != "" {
				t.Errorf("r.Add(o).Sub(o) is not r (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResourcesFits(t *testing.T) {
	t.Parallel()
	node := dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB, Pids: 1000}
	for _, tc := range []struct {
		name     string
		r, avail dao.Resources
		wantFits bool
	}{
		{"nothing in nothing", dao.Resources{}, dao.Resources{}, true},
		{"nothing in a node", dao.Resources{}, node, true},
		{"smaller in every field", dao.Resources{MilliCPU: 500, Memory: dao.GiB, Pids: 10}, node, true},
		{"exactly equal", node, node, true},
		{"too much CPU", dao.Resources{MilliCPU: 4001}, node, false},
		{"too much memory", dao.Resources{Memory: 8*dao.GiB + 1}, node, false},
		{"too many pids", dao.Resources{Pids: 1001}, node, false},
		{"one field over, others under", dao.Resources{MilliCPU: 1, Memory: 1, Pids: 2000}, node, false},
		{"anything in nothing", dao.Resources{MilliCPU: 1}, dao.Resources{}, false},
		{"anything in a negative remainder", dao.Resources{}, dao.Resources{Memory: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.Fits(tc.avail); got != tc.wantFits {
				t.Errorf("%+v.Fits(%+v) = %t, want %t", tc.r, tc.avail, got, tc.wantFits)
			}
		})
	}

	// What is left after placing a task is what the next one must fit in.
	left := node.Sub(dao.Resources{MilliCPU: 3000, Memory: 6 * dao.GiB})
	if next := (dao.Resources{MilliCPU: 1500}); next.Fits(left) {
		t.Errorf("%+v.Fits(%+v) = true, want false", next, left)
	}
	if next := (dao.Resources{MilliCPU: 1000, Memory: 2 * dao.GiB}); !next.Fits(left) {
		t.Errorf("%+v.Fits(%+v) = false, want true", next, left)
	}
}

func TestResourcesIsZero(t *testing.T) {
	t.Parallel()
	if !(dao.Resources{}).IsZero() {
		t.Errorf("Resources{}.IsZero() = false, want true")
	}
	for _, r := range []dao.Resources{{MilliCPU: 1}, {Memory: 1}, {Pids: 1}, {Memory: -1}} {
		if r.IsZero() {
			t.Errorf("%+v.IsZero() = true, want false", r)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0B"},
		{1, "1B"},
		{512, "512B"},
		{1023, "1023B"},
		{dao.KiB, "1KiB"},
		{1536, "1.5KiB"},
		{dao.MiB, "1MiB"},
		{dao.MinMemory, "4MiB"},
		{64 * dao.MiB, "64MiB"},
		{dao.GiB + dao.GiB/2, "1.5GiB"},
		{1181116006, "1.1GiB"}, // 1.1GiB, rounded to one decimal
		{dao.GiB, "1GiB"},
		{1023 * dao.GiB, "1023GiB"},
		{1 << 40, "1TiB"},
		{1 << 50, "1024TiB"}, // TiB is the largest unit
		{-1, "-1B"},
		{-1536, "-1.5KiB"},
		{-4 * dao.MiB, "-4MiB"},
	} {
		if got := dao.FormatBytes(tc.n); got != tc.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

// TestFormatBytesCarriesRoundedValues pins "writes n in binary units: 512B, 4MiB, 1.5GiB":
// below TiB the figure is less than 1024 of its unit. BUG (resources.go:62-73): the unit is
// chosen before rounding to one decimal, so 1MiB-1 is written "1024.0KiB" today.
func TestFormatBytesCarriesRoundedValues(t *testing.T) {
	t.Parallel()
	for _, n := range []int64{dao.MiB - 1, dao.GiB - 1, dao.GiB - 100} {
		got := dao.FormatBytes(n)
		num := strings.TrimRight(got, "BKMGiT")
		v, err := strconv.ParseFloat(num, 64)
		if err != nil {
			t.Fatalf("FormatBytes(%d) = %q, want a number and a unit", n, got)
		}
		if v >= 1024 {
			t.Errorf("FormatBytes(%d) = %q, want a figure below 1024 in a larger unit", n, got)
		}
	}
}
