package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/registry/remote"
)

// progressBars draws one line per layer of a pull, as docker pull does. On a terminal the
// lines are redrawn in place ten times a second, each cut to the terminal's width (read at
// each redraw, so that resizing works) so that no line wraps and the redraw stays in place;
// the lines keep their places during the pull, and the last frame has the layers in the
// image's order. Elsewhere (a log, a pipe) each layer gets one plain line when it is done.
type progressBars struct {
	w     io.Writer
	live  bool
	color bool
	// width returns the terminal's width in columns, 0 when unknown: no limit.
	width func() int

	mu    sync.Mutex
	order []digest.Digest
	blobs map[digest.Digest]*blobProgress
	drawn int // lines drawn by the last redraw

	quit chan struct{}
	wg   sync.WaitGroup
}

type blobProgress struct {
	layer     bool
	total     int64
	done      int64
	complete  bool
	existed   bool // complete at its first report: the store had it
	announced bool // its line is printed (not live)
}

func newProgressBars(w io.Writer, live, color bool) *progressBars {
	return &progressBars{w: w, live: live, color: color, blobs: map[digest.Digest]*blobProgress{},
		width: func() int { return terminalWidth(w) }}
}

// setOrder puts the lines of layers in the order of layers (the image's), for the last
// frame; layers it does not name keep their places after them.
func (b *progressBars) setOrder(layers []digest.Digest) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rank := map[digest.Digest]int{}
	for i, d := range layers {
		rank[d] = i
	}
	slices.SortStableFunc(b.order, func(x, y digest.Digest) int {
		rx, okx := rank[x]
		ry, oky := rank[y]
		switch {
		case okx && oky:
			return rx - ry
		case okx:
			return -1
		case oky:
			return 1
		}
		return 0
	})
}

// update takes one report of the registry client.
func (b *progressBars) update(p remote.Progress) {
	if p.Action != "fetch" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bp, ok := b.blobs[p.Descriptor.Digest]
	if !ok {
		bp = &blobProgress{layer: isLayer(p.Descriptor.MediaType), total: p.Total, existed: p.Complete}
		b.blobs[p.Descriptor.Digest] = bp
		b.order = append(b.order, p.Descriptor.Digest)
	}
	bp.done = max(bp.done, p.Done)
	bp.complete = bp.complete || p.Complete
	if !b.live && bp.layer && bp.complete && !bp.announced {
		bp.announced = true
		fmt.Fprintln(b.w, b.line(p.Descriptor.Digest, bp, 0))
	}
}

func isLayer(mediaType string) bool {
	return strings.Contains(mediaType, "layer") || strings.Contains(mediaType, "rootfs")
}

// start begins redrawing, on a terminal.
func (b *progressBars) start() {
	if !b.live {
		return
	}
	b.quit = make(chan struct{})
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-b.quit:
				return
			case <-t.C:
				b.redraw()
			}
		}
	}()
}

// stop draws the final state and stops redrawing.
func (b *progressBars) stop() {
	if !b.live {
		return
	}
	close(b.quit)
	b.wg.Wait()
	b.redraw()
}

func (b *progressBars) redraw() {
	b.mu.Lock()
	defer b.mu.Unlock()
	var sb strings.Builder
	if b.drawn > 0 {
		fmt.Fprintf(&sb, "\x1b[%dA", b.drawn)
	}
	n := 0
	width := b.width()
	for _, d := range b.order {
		if bp := b.blobs[d]; bp.layer {
			sb.WriteString("\x1b[2K")
			sb.WriteString(b.line(d, bp, width))
			sb.WriteByte('\n')
			n++
		}
	}
	b.drawn = n
	io.WriteString(b.w, sb.String())
}

// line is one layer's line: "  0123456789ab  Downloading [=====>      ]  12.3MB / 25MB",
// cut to fit in width columns (0: no limit) with one to spare, so that no terminal wraps
// it: the bar shrinks, then goes, then the line is cut.
func (b *progressBars) line(d digest.Digest, bp *blobProgress, width int) string {
	id := d.Encoded()
	if len(id) > 12 {
		id = id[:12]
	}
	room := math.MaxInt
	if width > 0 {
		room = width - 1
	}
	status, colour, rest := "", "", ""
	switch {
	case bp.existed:
		status, colour = "Already exists", dim
	case bp.complete:
		status, colour, rest = "Pull complete", green, "  "+formatBytes(bp.total)
	default:
		// The bytes done take six columns, the most formatBytes writes below 1000PB
		// ("12.3MB"), so that the bar keeps its width as they grow.
		sizes := fmt.Sprintf("  %6s / %s", formatBytes(bp.done), formatBytes(bp.total))
		head := "  " + id + "  Downloading"
		const maxBar = 30
		bar := min(maxBar, room-len(head)-len(" []")-len(sizes))
		if bar < 10 {
			return cut(head+sizes, room)
		}
		fill := 0
		if bp.total > 0 {
			fill = int(min(bp.done, bp.total) * int64(bar) / bp.total)
		}
		s := strings.Repeat("=", fill)
		if fill < bar {
			s += ">" + strings.Repeat(" ", bar-fill-1)
		}
		return head + " [" + s + "]" + sizes
	}
	plain := "  " + id + "  " + status + rest
	if len(plain) > room {
		return cut(plain, room)
	}
	return "  " + id + "  " + paint(b.color, colour, status) + rest
}

// cut shortens the ASCII text s to n bytes at most.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:max(n, 0)]
}

// fetched is how many bytes came from the registry (blobs the store had not).
func (b *progressBars) fetched() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n int64
	for _, bp := range b.blobs {
		if !bp.existed {
			n += bp.done
		}
	}
	return n
}
