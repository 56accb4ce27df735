package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
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

// printFlags lists the flags of fs in GNU style: "  -a, --all      text", "      --until WHEN  text".
func printFlags(w io.Writer, fs *pflag.FlagSet) {
	var rows [][2]string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" || f.Hidden {
			return
		}
		name, text := pflag.UnquoteUsage(f)
		head := "    --" + f.Name
		if f.Shorthand != "" {
			head = "-" + f.Shorthand + ", --" + f.Name
		}
		if name != "" {
			head += " " + name
		}
		if def := f.DefValue; def != "" && def != "false" && def != "[]" && def != "0" {
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

// formatBytes writes n in decimal units with three significant digits, as docker does:
// "0B", "512B", "1.23kB", "45.1MB", "120MB", "2.5GB". Every size dao prints is written so.
func formatBytes(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}
	v, i := float64(n), 0
	for i < len(units)-1 && math.Abs(v) >= 999.5 {
		v /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d%s", n, units[0])
	}
	s := strconv.FormatFloat(v, 'g', 3, 64)
	if strings.ContainsAny(s, "e") { // 999.6kB rounds to 1e+03kB: one unit up
		s = strconv.FormatFloat(v/1000, 'g', 3, 64)
		i++
	}
	return s + units[i]
}

// outputFormat is the value of -o/--output and --format: "table" (the default) or "json".
type outputFormat string

func (f *outputFormat) String() string { return string(*f) }
func (f *outputFormat) Type() string   { return "FORMAT" }
func (f *outputFormat) Set(v string) error {
	switch v {
	case "table", "json":
		*f = outputFormat(v)
		return nil
	}
	return fmt.Errorf("want table or json")
}

// formatFlags adds -o/--output and its docker spelling --format, both setting f.
func formatFlags(fs *pflag.FlagSet, f *outputFormat) {
	fs.VarP(f, "output", "o", "print `FORMAT`: table (the default), or json for scripts (one JSON object a line)")
	fs.Var(f, "format", "the same as --output, as docker spells it: `FORMAT` table or json")
	*f = "table" // after: no "(default table)" in the help
}

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// terminalWidth is the width of the terminal w is, or 0 when w is not one.
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return width
}
