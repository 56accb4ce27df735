package edge

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/containerd/v2/pkg/cio"
)

// Containers' output is written by a logger process that containerd's shim starts for each
// container (the shim's "binary" logging): a small shell script, written by the Runtime into
// its log directory, that appends the container's stdout and stderr to its log file with two
// cats. The shim, not this process, owns the logger, so output is kept while no Dao process
// runs and a container never blocks on a reader of ours.
//
// Why not the shim's own file logging (cio.LogFile): it closes the file when stdout ends even
// while stderr is still being copied, so the last lines a container writes to stderr before it
// exits are lost now and then (seen in 2 to 7 of 60 containers).
const loggerScript = `#!/bin/sh
# Written by github.com/opendao/dao/edge: the logger containerd's shim starts for a container.
# fd 3 is the container's stdout, fd 4 its stderr, fd 5 the shim's readiness pipe.
# Arguments: "dir" DIR; the log file is DIR/$CONTAINER_ID.log. Every process must close fd 5:
# the shim waits for it to reach EOF before it starts the container. The shim holds the pipes
# open until the task is deleted, then sends SIGTERM and waits for this script to exit: the
# signal is ignored so that the cats drain the pipes first, and a deleted task's log is whole.
log="$2/$CONTAINER_ID.log"
trap '' TERM
cat <&3 >>"$log" 3<&- 4<&- 5>&- &
cat <&4 >>"$log" 3<&- 4<&- 5>&- &
exec 3<&- 4<&- 5>&-
wait
`

const loggerName = "dao-logger.sh"

// installLogger writes the logger script into dir, replacing an older one atomically.
func installLogger(dir string) (string, error) {
	path := filepath.Join(dir, loggerName)
	if b, err := os.ReadFile(path); err == nil && string(b) == loggerScript {
		return path, nil
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, time.Now().UnixNano())
	if err := os.WriteFile(tmp, []byte(loggerScript), 0o755); err != nil {
		return "", fmt.Errorf("edge: install logger: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("edge: install logger: %w", err)
	}
	return path, nil
}

// logCreator returns the cio.Creator that sends a container's output through the logger.
func (r *Runtime) logCreator() cio.Creator {
	u := &url.URL{Scheme: "binary", Path: r.logger, RawQuery: url.Values{"dir": {r.opts.logDir}}.Encode()}
	return cio.LogURI(u)
}
