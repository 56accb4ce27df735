package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/registry/remote"
)

// progressBars draws one line per layer of a pull, as docker pull does. On a terminal the
// lines are redrawn in place ten times a second; elsewhere (a log, a pipe) each layer gets
// one line when it is done, so that the output stays readable.
type progressBars struct {
	w     io.Writer
	live  bool
	color bool

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
	return &progressBars{w: w, live: live, color: color, blobs: map[digest.Digest]*blobProgress{}}
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
		fmt.Fprintln(b.w, b.line(p.Descriptor.Digest, bp))
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
	for _, d := range b.order {
		if bp := b.blobs[d]; bp.layer {
			sb.WriteString("\x1b[2K")
			sb.WriteString(b.line(d, bp))
			sb.WriteByte('\n')
			n++
		}
	}
	b.drawn = n
	io.WriteString(b.w, sb.String())
}

// line is one layer's line: "  0123456789ab  Downloading [=====>      ]  12.3 MB / 25.0 MB".
func (b *progressBars) line(d digest.Digest, bp *blobProgress) string {
	id := d.Encoded()
	if len(id) > 12 {
		id = id[:12]
	}
	switch {
	case bp.existed:
		return fmt.Sprintf("  %s  %s", id, paint(b.color, dim, "Already exists"))
	case bp.complete:
		return fmt.Sprintf("  %s  %s  %s", id, paint(b.color, green, "Pull complete"), humanBytes(bp.total))
	}
	const width = 30
	fill := 0
	if bp.total > 0 {
		fill = int(bp.done * width / bp.total)
	}
	bar := strings.Repeat("=", fill)
	if fill < width {
		bar += ">" + strings.Repeat(" ", width-fill-1)
	}
	return fmt.Sprintf("  %s  Downloading [%s]  %s / %s", id, bar, humanBytes(bp.done), humanBytes(bp.total))
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
