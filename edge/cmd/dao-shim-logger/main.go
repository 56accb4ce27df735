// Command dao-shim-logger is the logger that containerd's shim starts for each container of
// an edge.Runtime, alone in a small program: it is ready in about half the time of a large
// program's own executable built with cgo, and takes about half the CPU of the shell script
// edge uses otherwise.
// Install it beside the program that uses edge, or on PATH, and the Runtime finds it:
//
//	go install github.com/opendao/dao/edge/cmd/dao-shim-logger@latest
//
// or name it with edge.WithLoggerBinary. It is not meant to be run by hand: the shim passes
// the container's output as fds 3 and 4 (see package edge's documentation).
package main

import (
	"os"

	_ "github.com/opendao/dao/internal/shimlog" // its init runs the logger
)

func main() {
	// Reached only when not started by a shim.
	_, _ = os.Stderr.WriteString("dao-shim-logger: started by containerd's shim for an edge.Runtime, not by hand\n")
	os.Exit(2)
}
