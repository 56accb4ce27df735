package main

import (
	"io"
	"testing"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
)

// fullTask sets every field of a task, so that a codec that drops one is caught.
func fullTask() orchestrator.Task {
	at := time.Date(2026, 12, 4, 9, 30, 1, 123456789, time.UTC)
	return orchestrator.Task{Task: dao.Task{
		ID: "web.7.0badf00d", ServiceID: "web", ServiceVersion: 3, Slot: 7, NodeID: "node-0042",
		Spec: dao.ContainerSpec{
			Image: "registry.example.com/web:1", Command: []string{"/bin/web"}, Args: []string{"-v", ""},
			Env: []string{"A=1"}, WorkingDir: "/srv", User: "1000:1000", Hostname: "web",
			Resources: dao.Resources{MilliCPU: 250, Memory: 64 * dao.MiB, Pids: 100},
			Mounts: []dao.Mount{{Type: dao.MountBind, Source: "/data", Target: "/data", ReadOnly: true},
				{Type: dao.MountTmpfs, Target: "/tmp", SizeBytes: 1 << 20}},
			Ports: []dao.PortMapping{{Name: "http", ContainerPort: 80, HostPort: 8080, Protocol: "tcp"}},
			HealthCheck: &dao.HealthCheck{Command: []string{"true"}, Interval: dao.Duration(time.Second),
				Timeout: dao.Duration(time.Second), StartPeriod: dao.Duration(time.Second), Retries: 2},
			ReadOnlyRootfs: true, Privileged: true, CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"ALL"},
			HostNetwork: true, HostPID: true, HostIPC: true, Seccomp: dao.SeccompUnconfined,
			StopSignal: "SIGINT", StopGracePeriod: dao.Duration(3 * time.Second),
			Labels: map[string]string{"a": "1", "b": ""},
		},
		Restart: dao.RestartPolicy{Condition: dao.RestartAlways, InitialDelay: dao.Duration(time.Millisecond),
			MaxDelay: dao.Duration(time.Minute), Multiplier: 1.5, Jitter: 0.1, ResetAfter: dao.Duration(time.Hour),
			MaxAttempts: 5, Window: dao.Duration(time.Minute)},
		DesiredState: dao.TaskShutdown,
		Status: dao.TaskStatus{State: dao.TaskRunning, Message: "m", Err: "e", ContainerID: "c", PID: 42,
			Health: dao.HealthUnhealthy, ExitCode: -1, OOMKilled: true, Restarts: 3, Restarting: true,
			NextRestartAt: at.Add(time.Second), Addresses: []string{"10.0.0.1", "fd00::1"},
			StartedAt: at, FinishedAt: at.Add(-time.Hour), Timestamp: at.Add(time.Nanosecond)},
		CreatedAt: at.Add(-24 * time.Hour),
	}, Revision: 99}
}

func TestCodecsRoundTrip(t *testing.T) {
	cs, err := codecs()
	if err != nil {
		t.Fatal(err)
	}
	tasks := append(realisticTasks(2000, 100), fullTask(), orchestrator.Task{Task: dao.Task{ID: "empty"}})
	for _, c := range cs {
		for i := range tasks {
			if err := roundTrip(c, &tasks[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestRunEncoding(t *testing.T) {
	if err := runEncoding(io.Discard, 1000); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkEncode(b *testing.B) {
	cs, err := codecs()
	if err != nil {
		b.Fatal(err)
	}
	tasks := realisticTasks(1000, 100)
	for _, c := range cs {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for i := 0; b.Loop(); i++ {
				buf, _ = c.encode(buf[:0], &tasks[i%len(tasks)])
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	cs, err := codecs()
	if err != nil {
		b.Fatal(err)
	}
	tasks := realisticTasks(1000, 100)
	for _, c := range cs {
		enc := make([][]byte, len(tasks))
		for i := range tasks {
			enc[i], _ = c.encode(nil, &tasks[i])
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				var t orchestrator.Task
				if err := c.decode(enc[i%len(enc)], &t); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
