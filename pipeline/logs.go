package pipeline

import (
	"bytes"
	"time"
	"unicode/utf8"
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
	// Cut is true when the line was longer than MaxLineBytes: Text is its first part, cut at
	// the boundary of a UTF-8 character, and the line goes on in the step's next LogLine.
	Cut bool `json:"cut,omitempty"`
}

// TimeFormat is the layout of the time that starts a log line: RFC 3339 in UTC with
// milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// MaxLineBytes is the longest Text of a LogLine. A longer line, or output without a newline,
// is not dropped: it is cut into several LogLines, all but the last of them with Cut set, so
// that following a step's log takes bounded memory whatever its container writes.
const MaxLineBytes = 16 << 10

// CutMark ends the String of a LogLine that was cut (LogLine.Cut).
const CutMark = " [...]"

// String returns the line as the run record keeps it: its time, then "[dao] " for the
// runner's messages, then the text, then CutMark when the line goes on in the next one.
func (l LogLine) String() string {
	prefix := l.Time.UTC().Format(TimeFormat) + " "
	if l.Runner {
		prefix += "[dao] "
	}
	if l.Cut {
		return prefix + l.Text + CutMark
	}
	return prefix + l.Text
}

// lineWriter splits what is written to it into lines and hands each to emit, with cut set
// for the parts of a line longer than MaxLineBytes but its last. Flush emits an unfinished
// last line.
type lineWriter struct {
	emit func(text string, cut bool)
	max  int // the longest line; MaxLineBytes when 0
	buf  []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	max := w.max
	if max <= 0 {
		max = MaxLineBytes
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i > max || i < 0 && len(w.buf) > max {
			n := cutAt(w.buf, max)
			w.emit(string(w.buf[:n]), true)
			w.buf = w.buf[n:]
			continue
		}
		if i < 0 {
			break
		}
		w.emit(string(bytes.TrimSuffix(w.buf[:i], []byte("\r"))), false)
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) == 0 {
		w.buf = nil
	} else if cap(w.buf) > 4*max {
		w.buf = bytes.Clone(w.buf) // let a large write's array go
	}
	return len(p), nil
}

// cutAt returns where to cut a line longer than max: at max, or before the UTF-8 character
// that spans it.
func cutAt(b []byte, max int) int {
	for i := max; i > 0 && i > max-utf8.UTFMax; i-- {
		if !utf8.RuneStart(b[i]) {
			continue
		}
		if i == max {
			break
		}
		// A character that spans max, or may once the rest of it is written.
		if r, size := utf8.DecodeRune(b[i:]); !utf8.FullRune(b[i:]) || (r != utf8.RuneError || size > 1) && i+size > max {
			return i
		}
		break
	}
	return max
}

// Flush emits what is left as a last line.
func (w *lineWriter) Flush() {
	if len(w.buf) > 0 {
		w.emit(string(w.buf), false)
		w.buf = nil
	}
}
