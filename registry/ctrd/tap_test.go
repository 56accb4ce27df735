package ctrd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

func TestTap(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("0123456789"), 150_000) // more than a memory spool holds
	for _, inMemory := range []bool{true, false} {
		tp := newTap(t.TempDir(), int64(len(data)), 3, inMemory)
		// Two readers, one from the start, one once it is all there.
		got := make(chan []byte, 1)
		go func() {
			b, err := io.ReadAll(tp.reader(context.Background()))
			if err != nil {
				t.Error(err)
			}
			got <- b
		}()
		for off := 0; off < len(data); off += 7000 {
			if err := tp.write(data[off:min(off+7000, len(data))]); err != nil {
				t.Fatal(err)
			}
		}
		tp.finish(nil)
		if b := <-got; !bytes.Equal(b, data) {
			t.Errorf("in memory %v: reader during the writes got %d bytes, want %d", inMemory, len(b), len(data))
		}
		if b, err := io.ReadAll(tp.reader(context.Background())); err != nil || !bytes.Equal(b, data) {
			t.Errorf("in memory %v: reader after the writes got %d bytes, %v", inMemory, len(b), err)
		}
		tp.release()
		tp.release()
		tp.release() // the last: the spool is freed
		if _, err := io.ReadAll(tp.reader(context.Background())); !errors.Is(err, errTapClosed) {
			t.Errorf("in memory %v: read of a freed tap = %v, want errTapClosed", inMemory, err)
		}
	}
}

func TestTapFailsReaders(t *testing.T) {
	t.Parallel()
	tp := newTap(t.TempDir(), 100, 1, true)
	defer tp.release()
	tp.write([]byte("some"))
	r := tp.reader(context.Background())
	if b, err := io.ReadAll(io.LimitReader(r, 4)); err != nil || string(b) != "some" {
		t.Fatalf("read %q, %v", b, err)
	}
	bad := errors.New("fetch failed")
	go func() {
		time.Sleep(10 * time.Millisecond)
		tp.finish(bad)
	}()
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, bad) {
		t.Errorf("Read after a failure = %v, want %v", err, bad)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tp2 := newTap(t.TempDir(), 100, 1, true)
	defer tp2.release()
	if _, err := tp2.reader(ctx).Read(make([]byte, 10)); !errors.Is(err, context.Canceled) {
		t.Errorf("Read of a waiting reader whose context ended = %v", err)
	}
}
