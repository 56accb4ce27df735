package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opendao/dao/internal/bench/benchutil"
)

// sample is one timed pull: its wall time and the CPU time (user and system) that each
// process spent meanwhile.
type sample struct {
	wall time.Duration
	// self is this process's and its children's: Dao's pull, or ctr and skopeo.
	self       time.Duration
	containerd time.Duration
	registry   time.Duration
}

// median returns the sample of median wall time, with each CPU time the median of its own.
func median(ss []sample) sample {
	pick := func(f func(sample) time.Duration) time.Duration {
		ds := make([]time.Duration, len(ss))
		for i, s := range ss {
			ds[i] = f(s)
		}
		return benchutil.Median(ds)
	}
	return sample{
		wall:       pick(func(s sample) time.Duration { return s.wall }),
		self:       pick(func(s sample) time.Duration { return s.self }),
		containerd: pick(func(s sample) time.Duration { return s.containerd }),
		registry:   pick(func(s sample) time.Duration { return s.registry }),
	}
}

// readCPU returns the CPU time used so far by this process and its waited-for children, by
// the processes whose command line names ctrdDir (the containerd of that directory; none if
// ctrdDir is "") and by those that name regDir (the registry).
func readCPU(ctrdDir, regDir string) sample {
	var s sample
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			s.self += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		switch {
		case ctrdDir != "" && strings.Contains(string(cmd), ctrdDir+"/config.toml"):
			s.containerd += procCPU(e.Name())
		case strings.Contains(string(cmd), regDir+"/config.yml"):
			s.registry += procCPU(e.Name())
		}
	}
	return s
}

// procCPU returns the CPU time of process pid from /proc/pid/stat (utime and stime, in clock
// ticks of 10ms).
func procCPU(pid string) time.Duration {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 > len(b) {
		return 0
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// waitQuiet waits, up to limit, until the CPUs have been at least 90% idle for 300ms, so that
// other work on a shared machine (tests, builds) does not land in a timed run. It reports
// whether it did.
func waitQuiet(limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		b0, t0 := cpuTimes()
		time.Sleep(300 * time.Millisecond)
		b1, t1 := cpuTimes()
		if t1 > t0 && float64(b1-b0)/float64(t1-t0) < 0.10 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// cpuTimes returns the busy and total jiffies of all CPUs, from /proc/stat.
func cpuTimes() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		n, _ := strconv.ParseInt(f, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}
