package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// ANSI colours.
const (
	bold   = "\x1b[1m"
	red    = "\x1b[31m"
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	dim    = "\x1b[2m"
	reset  = "\x1b[0m"
)

// paint wraps s in colour when on is true.
func paint(on bool, colour, s string) string {
	if !on || s == "" {
		return s
	}
	return colour + s + reset
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// table writes aligned columns. Colour is applied to whole lines after alignment, since
// escape sequences inside cells would count as width.
type table struct {
	rows    [][]string
	colours []string // per row, "" for none
}

func (t *table) row(colour string, cells ...string) {
	t.rows = append(t.rows, cells)
	t.colours = append(t.colours, colour)
}

func (t *table) write(w io.Writer, color bool, indent string) {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	for _, r := range t.rows {
		fmt.Fprintln(tw, indent+strings.Join(r, "\t"))
	}
	tw.Flush()
	lines := strings.SplitAfter(buf.String(), "\n")
	for i, l := range lines {
		if i < len(t.colours) && color && t.colours[i] != "" {
			body := strings.TrimRight(l, " \n")
			l = paint(true, t.colours[i], body) + "\n"
		} else {
			l = strings.TrimRight(l, " \n")
			if l != "" {
				l += "\n"
			}
		}
		io.WriteString(w, l)
	}
}

// age says how long ago t was, in one unit: "45s", "12m", "5h", "3d".
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// shortID shortens a digest for display: "sha256:0123456789ab".
func shortID(s string) string {
	if algo, hex, ok := strings.Cut(s, ":"); ok && len(hex) == 64 && !strings.ContainsAny(hex, "/@") {
		return algo + ":" + hex[:12]
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// printFlags lists the flags of fs in GNU style: "  --until DURATION|TIMESTAMP  text".
func printFlags(w io.Writer, fs *flag.FlagSet) {
	var rows [][2]string
	fs.VisitAll(func(f *flag.Flag) {
		name, text := flag.UnquoteUsage(f)
		head := "--" + f.Name
		if name != "" {
			head += " " + name
		}
		if def := f.DefValue; def != "" && def != "false" && def != "[]" {
			text += " (default " + def + ")"
		}
		rows = append(rows, [2]string{head, text})
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "  %s\t%s\n", r[0], r[1])
	}
	tw.Flush()
}
