package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// startHogs starts n processes that spin at normal priority (`yes > /dev/null`), and returns
// the function that kills them and waits for them. They die with this program too.
func startHogs(n int) (stop func(), err error) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	defer null.Close()
	var cmds []*exec.Cmd
	stop = func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	for range n {
		c := exec.Command("yes")
		c.Stdout = null
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			stop()
			return nil, fmt.Errorf("start a CPU hog: %w", err)
		}
		cmds = append(cmds, c)
	}
	return stop, nil
}
