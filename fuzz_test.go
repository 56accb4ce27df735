package dao_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/opendao/dao"
)

// FuzzServiceSpecJSON feeds arbitrary JSON to the decoder and to Validate: neither may panic,
// every reason of an error is short whatever the input (it quotes at most dao.MaxQuoted
// runes), a spec that validates is within the limits the node and the orchestrator honour,
// and it survives a JSON round trip unchanged in meaning (it validates again).
func FuzzServiceSpecJSON(f *testing.F) {
	f.Add([]byte(`{"name":"web","replicas":3,"container":{"image":"busybox","resources":{"memory":67108864}}}`))
	f.Add([]byte(`{"name":"x","mode":"global","container":{"image":"a/b:c","env":["A=B"],"mounts":[{"type":"tmpfs","target":"/t"}],"ports":[{"containerPort":80,"hostPort":8080}]}}`))
	f.Add([]byte(`{"name":"r","container":{"image":"r@sha256:0123456789012345678901234567890123456789012345678901234567890123","healthCheck":{"command":["true"],"interval":"1s"}},"restart":{"condition":"on-failure","maxDelay":"5s"},"update":{"parallelism":2,"order":"start-first"}}`))
	f.Add([]byte(`{"name":"","container":{"image":""},"replicas":-1,"restart":{"initialDelay":"-1s"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var spec dao.ServiceSpec
		if err := json.Unmarshal(data, &spec); err != nil {
			return
		}
		err := spec.Validate()
		if err != nil {
			var ve *dao.ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) == 0 || !errors.Is(err, dao.ErrInvalid) {
				t.Fatalf("Validate returned %T %v, want a non-empty *ValidationError", err, err)
			}
			if len(ve.Errors) > dao.MaxProblems {
				t.Fatalf("%d problems listed, more than MaxProblems", len(ve.Errors))
			}
			for _, fe := range ve.Errors {
				if n := len(fe.Error()); n > 2048 {
					t.Fatalf("a problem of %d bytes: %.300s", n, fe.Error())
				}
			}
			return
		}
		checkWithinLimits(t, &spec)
		b, err := json.Marshal(&spec)
		if err != nil {
			t.Fatalf("marshal a valid spec: %v", err)
		}
		var again dao.ServiceSpec
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("unmarshal what we marshalled: %v\n%s", err, b)
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("valid spec invalid after a round trip: %v\n%s", err, b)
		}
	})
}

// checkWithinLimits fails t when a spec that validated asks for what the orchestrator or a
// node cannot do.
func checkWithinLimits(t *testing.T, s *dao.ServiceSpec) {
	t.Helper()
	c, r := &s.Container, s.Container.Resources
	switch {
	case s.Replicas > dao.MaxReplicas:
		t.Fatalf("valid spec with %d replicas", s.Replicas)
	case r.MilliCPU > dao.MaxMilliCPU || r.MilliCPU*100 < 0:
		t.Fatalf("valid spec with %d millicores", r.MilliCPU)
	case r.Memory > dao.MaxMemory || r.Pids > dao.MaxPids:
		t.Fatalf("valid spec with memory %d and pids %d", r.Memory, r.Pids)
	}
	for _, name := range append(append([]string{}, c.CapAdd...), c.CapDrop...) {
		if _, ok := dao.CapabilityName(name); !ok {
			t.Fatalf("valid spec with capability %q", name)
		}
	}
	if c.HostNetwork {
		for _, p := range c.Ports {
			if p.HostPort != 0 && p.HostPort != p.ContainerPort {
				t.Fatalf("valid spec maps port %d to %d on the host's network", p.ContainerPort, p.HostPort)
			}
		}
	}
}
