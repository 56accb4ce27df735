package pipeline

import (
	"bytes"
	"time"
)

// LogLine is one line of a step's log: a line its container wrote (stdout and stderr
// interleaved as written), or a message of the runner about the step. Secrets are masked.
type LogLine struct {
	// Time is when the runner read the line (containers' output carries no time of its own).
	Time time.Time `json:"time"`
	// Step is the step's record name (StepRecord.Name).
	Step string `json:"step"`
	// Runner is true for the runner's own messages ("attempt 1: container ... started").
	Runner bool `json:"runner,omitempty"`
	// Text is the line without its newline.
	Text string `json:"text"`
}

// TimeFormat is the layout of the time that starts a log line: RFC 3339 in UTC with
// milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// String returns the line as the run record keeps it: its time, then "[dao] " for the
// runner's messages, then the text.
func (l LogLine) String() string {
	prefix := l.Time.UTC().Format(TimeFormat) + " "
	if l.Runner {
		prefix += "[dao] "
	}
	return prefix + l.Text
}

// maxLineBytes is where a line without a newline is cut.
const maxLineBytes = 16 << 10

// lineWriter splits what is written to it into lines and hands each to emit. A line longer
// than maxLineBytes is cut into several. Flush emits an unfinished last line.
type lineWriter struct {
	emit func(text string)
	buf  []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(string(bytes.TrimSuffix(w.buf[:i], []byte("\r"))))
		w.buf = w.buf[i+1:]
	}
	for len(w.buf) >= maxLineBytes {
		w.emit(string(w.buf[:maxLineBytes]))
		w.buf = w.buf[maxLineBytes:]
	}
	if len(w.buf) == 0 {
		w.buf = nil
	}
	return len(p), nil
}

// Flush emits what is left as a last line.
func (w *lineWriter) Flush() {
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = nil
	}
}
