package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestScheduler runs the example on 500 simulated nodes with 20,000 tasks and checks what it
// prints.
func TestScheduler(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	cfg := config{nodes: 500, tasks: 20_000, start: 200 * time.Millisecond, progressEvery: 100 * time.Millisecond}
	if err := run(ctx, &out, cfg); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"20000 tasks on 500 simulated nodes",
		"500 nodes registered with the orchestrator",
		"creating 9 services with 20000 replicas in all",
		"placed [####################] 20000/20000   running [####################] 20000/20000",
		"placements/s: all 20000 tasks placed and handed to their nodes in",
		"all 20000 running after",
		"bytes per task",
		"tasks per node    min ",
		"(mean 40.0 over 500 nodes)",
		"tasks per zone    zone-a 4000, zone-b 4000, zone-c 4000, zone-d 4000, zone-e 4000",
		"4 of 9 services must keep off the db tier: none of their tasks is there",
		"scheduler example finished in",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("output:\n%s", got)
	}
}

func TestRefusesTooManyTasks(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), &out, config{nodes: 10, tasks: 1_000_000})
	if err == nil || !strings.Contains(err.Error(), "ask for fewer tasks or more nodes") {
		t.Errorf("run with 1,000,000 tasks on 10 nodes: %v, want a refusal", err)
	}
}
