package orchestrator

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// The check of a bbolt file, before bbolt maps it. The layout is that of bbolt's
// internal/common (page.go, meta.go, bucket.go), in the byte order of the machine that
// wrote it; bbolt files do not move between byte orders.
//
// A page starts with a header: its ID (u64), flags (u16: its type), count (u16: of
// elements) and overflow (u32: the number of pages after it that it spans). Pages 0 and 1
// are meta pages; bbolt reads the valid one (magic, version, FNV-64a checksum) with the
// higher transaction ID, which names the root bucket's page, the freelist page (or none)
// and the high water mark (the number of pages in use). A branch page's elements are
// (pos u32, ksize u32, pgid u64), a leaf page's (flags u32, pos u32, ksize u32, vsize u32),
// pos counting from the element; a leaf element with flag 1 is a bucket, whose value is
// (root pgid u64, sequence u64) followed, when root is 0, by the bucket's only page,
// inline.
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	boltPageHeader   = 16
	boltElemSize     = 16
	boltMetaEnd      = boltPageHeader + 64 // the meta fields end with the checksum
	boltBranchPage   = 0x01
	boltLeafPage     = 0x02
	boltFreelistPage = 0x10
	boltBucketFlag   = 0x01
	boltBucketHeader = 16
	boltNoFreelist   = ^uint64(0)
	// boltMaxDepth bounds the nesting of pages and buckets: a b-tree of a million keys
	// has a few levels.
	boltMaxDepth = 256
)

var boltOrder = binary.NativeEndian

// boltMeta is the meta page bbolt reads, as checkBoltMetas found it.
type boltMeta struct {
	pageSize            uint64
	root, freelist, hwm uint64
	txid                uint64
	// other is the meta page bbolt does not read (0 or 1), and otherErr what is wrong
	// with it, if it is not valid.
	other    int
	otherErr error
}

// readBoltMeta reads the meta page at off and checks its magic, version and checksum.
func readBoltMeta(r io.ReaderAt, off int64) (boltMeta, error) {
	var b [boltMetaEnd]byte
	if _, err := r.ReadAt(b[:], off); err != nil {
		if errors.Is(err, io.EOF) {
			return boltMeta{}, errors.New("past the end of the file")
		}
		return boltMeta{}, err
	}
	m := b[boltPageHeader:]
	h := fnv.New64a()
	h.Write(m[:56])
	switch {
	case boltOrder.Uint32(m[0:]) != boltMagic:
		return boltMeta{}, fmt.Errorf("no bbolt magic number (%#08x)", boltOrder.Uint32(m[0:]))
	case boltOrder.Uint32(m[4:]) != boltVersion:
		return boltMeta{}, fmt.Errorf("bbolt format version %d, want %d", boltOrder.Uint32(m[4:]), boltVersion)
	case boltOrder.Uint64(m[56:]) != h.Sum64():
		return boltMeta{}, errors.New("checksum mismatch")
	}
	return boltMeta{
		pageSize: uint64(boltOrder.Uint32(m[8:])),
		root:     boltOrder.Uint64(m[16:]),
		freelist: boltOrder.Uint64(m[32:]),
		hwm:      boltOrder.Uint64(m[40:]),
		txid:     boltOrder.Uint64(m[48:]),
	}, nil
}

// checkBoltMetas finds the page size and the meta page as bbolt does (bbolt.Open,
// DB.mmap, DB.meta), and checks that meta page against the file's size.
func checkBoltMetas(r io.ReaderAt, size int64) (boltMeta, error) {
	corrupt := func(format string, args ...any) (boltMeta, error) {
		return boltMeta{}, fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	m0, err0 := readBoltMeta(r, 0)
	ps := m0.pageSize
	if err0 != nil {
		// As bbolt: find page 1 at the offsets a page size can put it.
		for i := range 15 {
			pos := int64(1024) << i
			if pos >= size-1024 {
				break
			}
			if m, err := readBoltMeta(r, pos); err == nil {
				ps = m.pageSize
				break
			}
		}
	}
	if ps == 0 {
		// Say what is at page 1 for the usual page size.
		_, err1 := readBoltMeta(r, int64(os.Getpagesize()))
		return boltMeta{}, fmt.Errorf("%w: not a bbolt file, or both its meta pages are damaged: %w", ErrCorrupt,
			joinErrors(fmt.Errorf("page 0: %w", err0), fmt.Errorf("page 1 (at %d, or any other page size): %w", os.Getpagesize(), err1)))
	}
	if ps < 512 || ps > 1<<24 || ps&(ps-1) != 0 {
		return corrupt("page size %d is not a power of two from 512 to 16 MiB", ps)
	}
	if uint64(size) < 2*ps {
		return corrupt("%d bytes: shorter than its two meta pages of %d bytes (the file was cut short)", size, ps)
	}
	m1, err1 := readBoltMeta(r, int64(ps))
	var m boltMeta
	switch {
	case err0 != nil && err1 != nil:
		return boltMeta{}, fmt.Errorf("%w: both meta pages are damaged: %w", ErrCorrupt,
			joinErrors(fmt.Errorf("page 0: %w", err0), fmt.Errorf("page 1: %w", err1)))
	case err0 == nil && err1 == nil && m0.pageSize != m1.pageSize:
		return corrupt("the meta pages disagree on the page size: %d and %d", m0.pageSize, m1.pageSize)
	case err1 != nil || (err0 == nil && m0.txid >= m1.txid):
		m, m.other, m.otherErr = m0, 1, err1
	default:
		m, m.other, m.otherErr = m1, 0, err0
	}
	m.pageSize = ps
	pages := uint64(size) / ps
	switch {
	case m.hwm > pages:
		return corrupt("%d bytes: %d pages of %d bytes, but its meta page %d (transaction %d) counts %d (the file was cut short)",
			size, pages, ps, 1-m.other, m.txid, m.hwm)
	case m.root < 2 || m.root >= m.hwm:
		return corrupt("meta page %d: root page %d is outside the data pages 2 to %d", 1-m.other, m.root, m.hwm-1)
	case m.freelist != boltNoFreelist && (m.freelist < 2 || m.freelist >= m.hwm):
		return corrupt("meta page %d: freelist page %d is outside the data pages 2 to %d", 1-m.other, m.freelist, m.hwm-1)
	}
	return m, nil
}

// checkBoltFile checks the meta page bbolt reads and every page it reaches from there:
// what bbolt's Tx.Check checks, and what bbolt needs besides (see boltWalker.node),
// reading the file instead of mapping it, so that damage is an error here instead of a
// crash in bbolt.
func checkBoltFile(r io.ReaderAt, size int64) (boltMeta, error) {
	m, err := checkBoltMetas(r, size)
	if err != nil {
		return m, err
	}
	w := &boltWalker{r: r, ps: m.pageSize, hwm: m.hwm, seen: make([]uint64, (m.hwm+63)/64)}
	var free []uint64
	if m.freelist != boltNoFreelist {
		if free, err = w.freelist(m.freelist); err != nil {
			return m, err
		}
	}
	if _, err := w.node(m.root, nil, nil, 0, boltRef{bucket: "the root bucket"}); err != nil {
		return m, err
	}
	seenFree := make([]uint64, len(w.seen))
	for _, id := range free {
		switch {
		case id < 2 || id >= m.hwm:
			return m, boltCorrupt("freelist page %d: free page %d is outside the data pages 2 to %d", m.freelist, id, m.hwm-1)
		case bitSet(w.seen, id):
			return m, boltCorrupt("freelist page %d: page %d is free and in use", m.freelist, id)
		case bitSet(seenFree, id):
			return m, boltCorrupt("freelist page %d: page %d is free twice", m.freelist, id)
		}
		seenFree[id/64] |= 1 << (id % 64)
	}
	return m, nil
}

func bitSet(bits []uint64, i uint64) bool { return bits[i/64]&(1<<(i%64)) != 0 }

func boltCorrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// boltRef says what refers to a page, for errors: a bucket's root, or an element of a
// branch page.
type boltRef struct {
	bucket string
	branch uint64 // 0: the bucket's root
	elem   int
}

func (r boltRef) String() string {
	if r.branch == 0 {
		return r.bucket
	}
	return fmt.Sprintf("%s: branch page %d element %d", r.bucket, r.branch, r.elem)
}

// boltWalker reads the pages of a bbolt file, checking each, and notes those it reached.
// It reads each page into the buffer of its depth in the tree, so that it holds one page
// per level.
type boltWalker struct {
	r    io.ReaderAt
	ps   uint64
	hwm  uint64
	seen []uint64 // a bit per page
	bufs [][]byte // by depth
	// win holds the file's bytes from winOff.
	win    []byte
	winOff uint64
}

// page reads page id, and the pages it overflows to, into the buffer of depth; it checks
// its header and that nothing else reached it.
func (w *boltWalker) page(id uint64, depth int, ref boltRef) ([]byte, error) {
	if id < 2 || id >= w.hwm {
		return nil, boltCorrupt("%s: refers to page %d, outside the data pages 2 to %d", ref, id, w.hwm-1)
	}
	for len(w.bufs) <= depth {
		w.bufs = append(w.bufs, make([]byte, w.ps))
	}
	p := w.bufs[depth][:w.ps]
	if err := w.read(p, id); err != nil {
		return nil, err
	}
	over := uint64(boltOrder.Uint32(p[12:]))
	switch {
	case boltOrder.Uint64(p[0:]) != id:
		return nil, boltCorrupt("%s: page %d is marked as page %d", ref, id, boltOrder.Uint64(p[0:]))
	case over >= w.hwm-id:
		return nil, boltCorrupt("%s: page %d spans %d more pages, past the last page %d", ref, id, over, w.hwm-1)
	}
	for i := id; i <= id+over; i++ {
		if bitSet(w.seen, i) {
			return nil, boltCorrupt("%s: page %d is reached twice", ref, i)
		}
		w.seen[i/64] |= 1 << (i % 64)
	}
	if over > 0 {
		size := (over + 1) * w.ps
		if uint64(cap(w.bufs[depth])) < size {
			b := make([]byte, size)
			copy(b, p)
			w.bufs[depth] = b
		}
		p = w.bufs[depth][:size]
		if _, err := w.r.ReadAt(p[w.ps:], int64((id+1)*w.ps)); err != nil {
			return nil, fmt.Errorf("read page %d: %w", id, err)
		}
	}
	return p, nil
}

// boltWindow is how much of the file the walker reads at once: bbolt writes the pages of
// a tree mostly in order, so the next page is often in it.
const boltWindow = 256 << 10

// read reads page id into p (one page), through the window.
func (w *boltWalker) read(p []byte, id uint64) error {
	off := id * w.ps
	if off < w.winOff || off+w.ps > w.winOff+uint64(len(w.win)) {
		if w.win == nil {
			w.win = make([]byte, max(boltWindow, w.ps))
		}
		w.winOff = off
		n, err := w.r.ReadAt(w.win[:cap(w.win)], int64(off))
		w.win = w.win[:n]
		if uint64(n) < w.ps {
			return fmt.Errorf("read page %d: %w", id, cmp.Or(err, io.ErrUnexpectedEOF))
		}
	}
	copy(p, w.win[off-w.winOff:])
	return nil
}

// freelist reads the freelist page id and returns the pages it lists.
func (w *boltWalker) freelist(id uint64) ([]uint64, error) {
	p, err := w.page(id, 0, boltRef{bucket: "the meta page's freelist"})
	if err != nil {
		return nil, err
	}
	if f := boltOrder.Uint16(p[8:]); f != boltFreelistPage {
		return nil, boltCorrupt("freelist page %d is of type %#x, want %#x", id, f, boltFreelistPage)
	}
	n, first := uint64(boltOrder.Uint16(p[10:])), uint64(0)
	room := uint64(len(p)-boltPageHeader) / 8
	if n == 0xffff { // the count is in the first element
		n, first = boltOrder.Uint64(p[boltPageHeader:]), 1
	}
	if n > room-first {
		return nil, boltCorrupt("freelist page %d: %d free pages do not fit in it", id, n)
	}
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = boltOrder.Uint64(p[boltPageHeader+(first+uint64(i))*8:])
	}
	return ids, nil
}

// node checks the b-tree page id of a bucket, and the pages and buckets below it: its
// keys must be in [lo, hi) (a nil bound is none). It returns the first key under it, nil
// if none, valid until the walker reads another page at this depth.
//
// bbolt needs more than its Tx.Check verifies: a branch's key for a child must be the
// child's first key (bbolt looks it up by that key when it rewrites the child, and adds a
// second reference if it is not there), and no key may be empty (bbolt panics on one).
func (w *boltWalker) node(id uint64, lo, hi []byte, depth int, ref boltRef) ([]byte, error) {
	if depth > boltMaxDepth {
		return nil, boltCorrupt("%s: pages and buckets nested more than %d deep", ref, boltMaxDepth)
	}
	p, err := w.page(id, depth, ref)
	if err != nil {
		return nil, err
	}
	switch f := boltOrder.Uint16(p[8:]); f {
	case boltLeafPage:
		return w.leaf(p, lo, hi, depth, ref.bucket, id)
	case boltBranchPage:
	default:
		return nil, boltCorrupt("%s: page %d is of type %#x, not a branch or leaf page", ref, id, f)
	}
	n := int(boltOrder.Uint16(p[10:]))
	switch {
	case n == 0:
		return nil, boltCorrupt("%s: branch page %d has no elements", ref.bucket, id)
	case boltPageHeader+n*boltElemSize > len(p):
		return nil, boltCorrupt("%s: branch page %d: %d elements do not fit in it", ref.bucket, id, n)
	}
	key := func(i int) ([]byte, error) {
		e := boltPageHeader + i*boltElemSize
		return w.span(p, e, boltOrder.Uint32(p[e:]), boltOrder.Uint32(p[e+4:]), 0, ref.bucket, "branch", id, i)
	}
	var prev []byte
	for i := range n {
		k, err := key(i)
		if err != nil {
			return nil, err
		}
		if err := w.order(k, prev, i, lo, hi, ref.bucket, "branch", id); err != nil {
			return nil, err
		}
		prev = k
	}
	first, _ := key(0)
	k := first
	for i := range n {
		next := hi
		if i+1 < n {
			next, _ = key(i + 1)
		}
		child := boltOrder.Uint64(p[boltPageHeader+i*boltElemSize+8:])
		from := boltRef{bucket: ref.bucket, branch: id, elem: i}
		got, err := w.node(child, k, next, depth+1, from)
		switch {
		case err != nil:
			return nil, err
		case got == nil:
			return nil, boltCorrupt("%s: page %d has no keys", from, child)
		case !bytes.Equal(got, k):
			return nil, boltCorrupt("%s: key %q is not the first key of page %d, %q", from, shortKey(k), child, shortKey(got))
		}
		k = next
	}
	return first, nil
}

// leaf checks the leaf page p (page id of a bucket, or inline in a bucket's value if id
// is 0) and the buckets in it, and returns its first key, nil if none.
func (w *boltWalker) leaf(p []byte, lo, hi []byte, depth int, bucket string, id uint64) ([]byte, error) {
	n := int(boltOrder.Uint16(p[10:]))
	if boltPageHeader+n*boltElemSize > len(p) {
		return nil, boltCorrupt("%s: leaf page %d: %d elements do not fit in it", bucket, id, n)
	}
	var first, prev []byte
	for i := range n {
		e := boltPageHeader + i*boltElemSize
		flags, pos := boltOrder.Uint32(p[e:]), boltOrder.Uint32(p[e+4:])
		ks, vs := boltOrder.Uint32(p[e+8:]), boltOrder.Uint32(p[e+12:])
		kv, err := w.span(p, e, pos, ks, vs, bucket, "leaf", id, i)
		if err != nil {
			return nil, err
		}
		k, v := kv[:ks], kv[ks:]
		if err := w.order(k, prev, i, lo, hi, bucket, "leaf", id); err != nil {
			return nil, err
		}
		if i == 0 {
			first = k
		}
		prev = k
		if flags&boltBucketFlag != 0 {
			if err := w.bucket(v, depth+1, fmt.Sprintf("bucket %q", shortKey(k))); err != nil {
				return nil, err
			}
		}
	}
	return first, nil
}

// bucket checks a bucket, given its value.
func (w *boltWalker) bucket(v []byte, depth int, name string) error {
	if len(v) < boltBucketHeader {
		return boltCorrupt("%s: a bucket's value of %d bytes, want at least %d", name, len(v), boltBucketHeader)
	}
	if depth > boltMaxDepth {
		return boltCorrupt("%s: buckets nested more than %d deep", name, boltMaxDepth)
	}
	if root := boltOrder.Uint64(v); root != 0 {
		_, err := w.node(root, nil, nil, depth, boltRef{bucket: name})
		return err
	}
	p := v[boltBucketHeader:]
	if len(p) < boltPageHeader {
		return boltCorrupt("%s: an inline page of %d bytes", name, len(p))
	}
	if f := boltOrder.Uint16(p[8:]); f != boltLeafPage {
		return boltCorrupt("%s: its inline page is of type %#x, not a leaf page", name, f)
	}
	_, err := w.leaf(p, nil, nil, depth, name, 0)
	return err
}

// span returns the key and value of element i at offset e of page p (of kind "branch" or
// "leaf"; id 0 for an inline page), checking that they are in it.
func (w *boltWalker) span(p []byte, e int, pos, ks, vs uint32, bucket, kind string, id uint64, i int) ([]byte, error) {
	start := uint64(e) + uint64(pos)
	end := start + uint64(ks) + uint64(vs)
	if end > uint64(len(p)) {
		return nil, boltCorrupt("%s: %s: element %d (%d bytes at %d) runs past the page's end (%d bytes)",
			bucket, pageName(kind, id), i, end-start, start, len(p))
	}
	return p[start:end], nil
}

// order checks that key i of a page is not empty, follows the one before it, prev, and is
// in [lo, hi).
func (w *boltWalker) order(k, prev []byte, i int, lo, hi []byte, bucket, kind string, id uint64) error {
	switch {
	case len(k) == 0:
		return boltCorrupt("%s: %s: key %d is empty", bucket, pageName(kind, id), i)
	case i > 0 && bytes.Compare(prev, k) >= 0:
		return boltCorrupt("%s: %s: key %d %q does not follow key %d %q", bucket, pageName(kind, id), i, shortKey(k), i-1, shortKey(prev))
	case lo != nil && bytes.Compare(k, lo) < 0, hi != nil && bytes.Compare(k, hi) >= 0:
		return boltCorrupt("%s: %s: key %d %q is outside the range its branch gives it, [%q, %q)",
			bucket, pageName(kind, id), i, shortKey(k), shortKey(lo), shortKey(hi))
	}
	return nil
}

func pageName(kind string, id uint64) string {
	if id == 0 {
		return "inline " + kind + " page"
	}
	return fmt.Sprintf("%s page %d", kind, id)
}

func shortKey(k []byte) []byte {
	if len(k) > 64 {
		return k[:64]
	}
	return k
}
