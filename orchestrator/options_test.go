package orchestrator_test

import (
	"errors"
	"math"
	"testing"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/testutil/fixture"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/scheduler"
	"github.com/opendao/dao/policy"
)

// Every option rejects a bad value with an error that names the option and wraps
// dao.ErrInvalid.
func TestOptionsRejectBadValues(t *testing.T) {
	t.Parallel()
	store, err := orchestrator.NewMemoryStore()
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	newWith := func(opt orchestrator.Option) error {
		_, err := orchestrator.New(store, opt)
		return err
	}
	storeWith := func(opt orchestrator.StoreOption) error {
		s, err := orchestrator.NewMemoryStore(opt)
		if err == nil {
			s.Close()
		}
		return err
	}
	tests := []struct {
		option string
		err    error
	}{
		{"WithAdmission", newWith(orchestrator.WithAdmission(policy.AdmissionRule{Name: "empty"}))},
		{"WithClock", newWith(orchestrator.WithClock(nil))},
		{"WithHeartbeatTimeout", newWith(orchestrator.WithHeartbeatTimeout(0))},
		{"WithGrace", newWith(orchestrator.WithGrace(-1))},
		{"WithMassSilence", newWith(orchestrator.WithMassSilence(1.5))},
		{"WithMassSilence", newWith(orchestrator.WithMassSilence(math.NaN()))},
		{"WithReplaceDelay", newWith(orchestrator.WithReplaceDelay(-1))},
		{"WithTaskHistory", newWith(orchestrator.WithTaskHistory(-1))},
		{"WithLogger", newWith(orchestrator.WithLogger(nil))},
		{"Option", newWith(nil)},
		{"WithSampleSize", newWith(orchestrator.WithScheduling(scheduler.WithSampleSize(0)))},
		{"WithRand", newWith(orchestrator.WithScheduling(scheduler.WithRand(nil)))},
		{"WithScheduling", newWith(orchestrator.WithScheduling(nil))},
		{"WithHistory", storeWith(orchestrator.WithHistory(0))},
		{"WithWatchBuffer", storeWith(orchestrator.WithWatchBuffer(0))},
		{"WithStoreLogger", storeWith(orchestrator.WithStoreLogger(nil))},
		{"StoreOption", storeWith(nil)},
	}
	for _, tt := range tests {
		fixture.CheckOptionError(t, tt.option, tt.err)
	}
	// A bolt store checks its options as the memory store does.
	if _, err := orchestrator.OpenBoltStore(t.TempDir()+"/s.db", orchestrator.WithHistory(0)); !errors.Is(err, dao.ErrInvalid) {
		t.Errorf("OpenBoltStore(WithHistory(0)): got %v, want dao.ErrInvalid", err)
	}
}
