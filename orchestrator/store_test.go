package orchestrator_test

import (
	"path/filepath"
	"testing"

	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/storetest"
)

func openMemoryStore(t *testing.T, c storetest.Config) orchestrator.Store {
	s, err := orchestrator.NewMemoryStore(orchestrator.WithHistory(c.History), orchestrator.WithWatchBuffer(c.WatchBuffer))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openBoltStore(t *testing.T, dir string, c storetest.Config) orchestrator.Store {
	s, err := orchestrator.OpenBoltStore(filepath.Join(dir, "state.db"),
		orchestrator.WithHistory(c.History), orchestrator.WithWatchBuffer(c.WatchBuffer))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMemoryStore(t *testing.T) {
	storetest.Run(t, openMemoryStore)
}

func TestBoltStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T, c storetest.Config) orchestrator.Store {
		return openBoltStore(t, t.TempDir(), c)
	})
	storetest.RunDurable(t, openBoltStore)
}
