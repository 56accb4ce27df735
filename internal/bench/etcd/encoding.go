package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/cborenc"
	"github.com/opendao/dao/orchestrator"
)

// A codec encodes a task as the store would write it, and decodes it back.
type codec struct {
	name   string
	encode func(dst []byte, t *orchestrator.Task) ([]byte, error)
	decode func(b []byte, t *orchestrator.Task) error
}

// codecs are the encodings measured: encoding/json, as the stores wrote first (and the
// bbolt store still does); CBOR as internal/cborenc has it, which the etcd store and the
// node protocol use (the JSON field names as text keys, times as RFC 3339 text, states and
// durations as numbers, bounded decoding); and a hand-written protobuf wire encoding
// (field numbers, varints, times as Unix nanoseconds), the most compact.
func codecs() ([]codec, error) {
	return []codec{
		{"encoding/json", func(dst []byte, t *orchestrator.Task) ([]byte, error) {
			b, err := json.Marshal(t)
			return append(dst, b...), err
		}, func(b []byte, t *orchestrator.Task) error { return json.Unmarshal(b, t) }},
		{"cbor, internal/cborenc (what the etcd store writes)", func(dst []byte, t *orchestrator.Task) ([]byte, error) {
			b, err := cborenc.Marshal(t)
			return append(dst, b...), err
		}, func(b []byte, t *orchestrator.Task) error { return cborenc.Unmarshal(b, t) }},
		{"protowire, hand-written", func(dst []byte, t *orchestrator.Task) ([]byte, error) {
			return appendTask(dst, t), nil
		}, decodeTask},
	}, nil
}

// realisticTasks returns n tasks of one service as the store holds them on a busy
// cluster: the same spec, distinct IDs, slots and nodes, most running, the rest in the
// states before, with the timestamps each state has.
func realisticTasks(n, nodes int) []orchestrator.Task {
	r := rand.New(rand.NewPCG(1, 2))
	spec := containerSpec()
	created := time.Date(2026, 12, 4, 9, 30, 0, 0, time.UTC)
	out := make([]orchestrator.Task, n)
	for i := range out {
		slot := i + 1
		at := created.Add(time.Duration(r.Int64N(int64(30 * time.Second))))
		t := orchestrator.Task{Task: dao.Task{
			ID:             fmt.Sprintf("web.%d.%08x", slot, r.Uint32()),
			ServiceID:      "web",
			ServiceVersion: 1,
			Slot:           slot,
			Spec:           spec,
			DesiredState:   dao.TaskRunning,
			CreatedAt:      created.Add(time.Duration(i) * 20 * time.Microsecond),
		}, Revision: uint64(1000 + i/127 + r.IntN(50))}
		switch p := r.IntN(100); {
		case p < 2:
			t.Status = dao.TaskStatus{State: dao.TaskPending, Message: "waiting for a node", Timestamp: t.CreatedAt}
		case p < 4:
			t.NodeID = fmt.Sprintf("node-%04d", 1+r.IntN(nodes))
			t.Status = dao.TaskStatus{State: dao.TaskAssigned, Message: "assigned", Timestamp: at}
		case p < 6:
			t.NodeID = fmt.Sprintf("node-%04d", 1+r.IntN(nodes))
			t.Status = dao.TaskStatus{State: dao.TaskPreparing, Message: "preparing", ContainerID: t.ID, Timestamp: at}
		default:
			t.NodeID = fmt.Sprintf("node-%04d", 1+r.IntN(nodes))
			t.Status = dao.TaskStatus{State: dao.TaskRunning, Message: "started", ContainerID: t.ID,
				PID: uint32(1000 + r.IntN(4_000_000)), Health: dao.HealthHealthy,
				Addresses: []string{fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), 2+r.IntN(250))},
				StartedAt: at, Timestamp: at.Add(time.Duration(r.Int64N(int64(time.Second))))}
			if p < 8 {
				t.Status.Restarts, t.Status.ExitCode = 1+r.IntN(3), 137
				t.Status.FinishedAt = at.Add(-time.Second)
			}
		}
		out[i] = t
	}
	return out
}

// encodingResult is what one codec measured over the tasks.
type encodingResult struct {
	encode, decode time.Duration
	bytes          int
	encAllocs      uint64
	decAllocs      uint64
}

func measureCodec(c codec, tasks []orchestrator.Task) (encodingResult, error) {
	var res encodingResult
	buf := make([]byte, 0, 1<<20)
	ends := make([]int, len(tasks))
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	begin := time.Now()
	for i := range tasks {
		var err error
		if buf, err = c.encode(buf, &tasks[i]); err != nil {
			return res, fmt.Errorf("%s: encode %s: %w", c.name, tasks[i].ID, err)
		}
		ends[i] = len(buf)
	}
	res.encode = time.Since(begin)
	runtime.ReadMemStats(&m1)
	res.encAllocs = m1.Mallocs - m0.Mallocs
	res.bytes = len(buf)
	runtime.GC()
	runtime.ReadMemStats(&m0)
	begin = time.Now()
	start := 0
	var t orchestrator.Task
	for i := range tasks {
		t = orchestrator.Task{}
		if err := c.decode(buf[start:ends[i]], &t); err != nil {
			return res, fmt.Errorf("%s: decode %s: %w", c.name, tasks[i].ID, err)
		}
		start = ends[i]
	}
	res.decode = time.Since(begin)
	runtime.ReadMemStats(&m1)
	res.decAllocs = m1.Mallocs - m0.Mallocs
	return res, nil
}

// roundTrip checks that t comes back from c as it went in, as JSON sees it.
func roundTrip(c codec, t *orchestrator.Task) error {
	b, err := c.encode(nil, t)
	if err != nil {
		return err
	}
	var back orchestrator.Task
	if err := c.decode(b, &back); err != nil {
		return err
	}
	want, _ := json.Marshal(t)
	got, _ := json.Marshal(&back)
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%s: task %s came back as\n%s\nwant\n%s", c.name, t.ID, got, want)
	}
	return nil
}

// runEncoding measures every codec over n tasks and prints a markdown table.
func runEncoding(w io.Writer, n int) error {
	if n < 1 {
		return fmt.Errorf("-tasks must be positive")
	}
	cs, err := codecs()
	if err != nil {
		return err
	}
	tasks := realisticTasks(n, 1000)
	for _, c := range cs {
		for i := 0; i < len(tasks); i += max(1, len(tasks)/1000) {
			if err := roundTrip(c, &tasks[i]); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(w, "go run ./internal/bench/etcd -encoding -tasks %d\n\n", n)
	fmt.Fprintf(w, "%d tasks of one service (same spec, distinct IDs, slots, nodes, statuses), one goroutine, best of 3\n\n", n)
	fmt.Fprintln(w, "| encoding | encode ns/task | decode ns/task | bytes/task | allocs/task enc/dec | encode all | decode all | bytes all |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, c := range cs {
		var best encodingResult
		for i := range 3 {
			r, err := measureCodec(c, tasks)
			if err != nil {
				return err
			}
			if i == 0 || r.encode < best.encode {
				best.encode, best.encAllocs = r.encode, r.encAllocs
			}
			if i == 0 || r.decode < best.decode {
				best.decode, best.decAllocs = r.decode, r.decAllocs
			}
			best.bytes = r.bytes
		}
		per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.0f | %.1f / %.1f | %.2f s | %.2f s | %.0f MB |\n", c.name,
			per(best.encode), per(best.decode), float64(best.bytes)/float64(n),
			float64(best.encAllocs)/float64(n), float64(best.decAllocs)/float64(n),
			best.encode.Seconds(), best.decode.Seconds(), float64(best.bytes)/1e6)
	}
	return nil
}
