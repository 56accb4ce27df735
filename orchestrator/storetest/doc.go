// Package storetest holds the conformance tests of orchestrator.Store: one suite that every
// store runs, so that the memory store, the bbolt store and any later one (etcd, or a
// program's own) keep the same contract. It also holds benchmarks that measure stores the
// same way.
//
// A store's tests call Run with a function that opens a new, empty store, and RunDurable
// if the store keeps its data across Close:
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, c storetest.Config) orchestrator.Store {
//			s, err := mystore.Open(mystore.WithHistory(c.History), mystore.WithWatchBuffer(c.WatchBuffer))
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// Among the rest, it holds a store to this: a watcher that falls too far behind is ended
// with orchestrator.ErrSlowWatcher, and one that stops reading within its buffer holds up
// no writer, no other watcher and not Close, which ends every watch with
// orchestrator.ErrClosed.
//
// The suite closes the stores it opens. Run it with -race: part of it writes, reads and
// watches from many goroutines at once.
package storetest
