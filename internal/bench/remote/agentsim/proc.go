package agentsim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config says what a child runs.
type Config struct {
	// Addr is the control plane's address, host:port.
	Addr string
	// Dir holds the identities, one subdirectory per node (cluster.Identity.Save).
	Dir string
	// From and Count select the nodes NodeID(From) to NodeID(From+Count-1).
	From, Count int
	// CPUs, when set, are the only CPUs the child runs on (benchutil.Pin).
	CPUs string
}

// Proc is a child process of simulated agents, as its parent sees it. Kill it when done:
// it is killed anyway when the parent dies (Pdeathsig), or when its standard input closes.
type Proc struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	exited   chan struct{}
	profiled chan struct{}

	mu        sync.Mutex
	connected int
	held      int
	heldAt    time.Time
	assigns   int
	err       error // the child's own error line, or how it ended
}

// Start starts a child running this program's executable again, as cfg says.
func Start(cfg Config) (*Proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-addr", cfg.Addr, "-dir", cfg.Dir, "-from", strconv.Itoa(cfg.From), "-count", strconv.Itoa(cfg.Count)}
	if cfg.CPUs != "" {
		args = append(args, "-cpus", cfg.CPUs)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), EnvChild+"=1")
	cmd.Stderr = os.Stderr
	// Killed with its parent, whatever becomes of the parent's defers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{cmd: cmd, stdin: stdin, exited: make(chan struct{}), profiled: make(chan struct{}, 1)}
	go p.read(stdout)
	return p, nil
}

func (p *Proc) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		p.mu.Lock()
		switch {
		case f[0] == "connected" && len(f) == 2:
			p.connected, _ = strconv.Atoi(f[1])
		case f[0] == "held" && len(f) == 4:
			p.held, _ = strconv.Atoi(f[1])
			p.assigns, _ = strconv.Atoi(f[3])
			ns, _ := strconv.ParseInt(f[2], 10, 64)
			p.heldAt = time.Time{}
			if ns != 0 {
				p.heldAt = time.Unix(0, ns)
			}
		case f[0] == "profiled":
			select {
			case p.profiled <- struct{}{}:
			default:
			}
		case f[0] == "error":
			p.err = errors.New(strings.TrimPrefix(sc.Text(), "error "))
		}
		p.mu.Unlock()
	}
	err := p.cmd.Wait()
	p.mu.Lock()
	if p.err == nil {
		p.err = fmt.Errorf("agents %d exited: %v", p.cmd.Process.Pid, err)
	}
	p.mu.Unlock()
	close(p.exited)
}

// Pid returns the child's process ID.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Connected returns how many of the child's clients have a session open, as it last said.
func (p *Proc) Connected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.connected
}

// Held returns how many tasks the child's nodes hold in their assignments, and when that
// last changed, as it last said.
func (p *Proc) Held() (int, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held, p.heldAt
}

// Assigns returns how many assignments the child's nodes took, as it last said.
func (p *Proc) Assigns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.assigns
}

// Err returns why the child failed or ended, nil while it runs well.
func (p *Proc) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// clockTicks is the unit of /proc/<pid>/stat's times: USER_HZ, 100 on Linux.
const clockTicks = 100

// CPU returns the CPU time (user and system) the child has used so far, from
// /proc/<pid>/stat, to the 10 ms.
func (p *Proc) CPU() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: the fields start after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", p.Pid())
	}
	f := strings.Fields(s[i+1:])
	// After the name: state (field 3 of stat), ..., utime (14), stime (15).
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", p.Pid(), len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", p.Pid(), err)
	}
	return time.Duration(u+st) * time.Second / clockTicks, nil
}

// StartProfile makes the child start a CPU profile of itself into file.
func (p *Proc) StartProfile(file string) error {
	_, err := fmt.Fprintf(p.stdin, "profile %s\n", file)
	return err
}

// StopProfile makes the child end its CPU profile, and waits until it is written.
func (p *Proc) StopProfile() error {
	if _, err := fmt.Fprintln(p.stdin, "endprofile"); err != nil {
		return err
	}
	select {
	case <-p.profiled:
		return nil
	case <-p.exited:
		return p.Err()
	case <-time.After(10 * time.Second):
		return fmt.Errorf("agents %d: no profile within 10s", p.Pid())
	}
}

// Signal sends sig to the child.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill kills the child with SIGKILL (a stopped one too) and waits until it has exited.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	_ = p.stdin.Close()
	<-p.exited
}

// Exited is closed once the child has exited and its output is read.
func (p *Proc) Exited() <-chan struct{} { return p.exited }
