package engine

import (
	"errors"
	"sync/atomic"
)

// Watcher lets a Poller wait for the client of a connection read through Readiness,
// instead of a goroutine. Its owner calls Shut before it closes the connection.
type Watcher struct {
	watch atomic.Pointer[Watch] // once Watch made one
	shut  atomic.Bool           // the connection is closing
}

var (
	// ErrClosed is Watch's answer once the connection is closing.
	ErrClosed   = errors.New("engine: connection closing")
	errBuffered = errors.New("engine: a message is buffered")
)

// Watch has p wait for the client: f runs on a worker when the client has sent
// something, and when Shut is called while p waits. f reads while rd is Ready, then
// calls Rearm. Call it from the reader, between messages, with nothing buffered; while
// p waits, gorilla's reader holds no buffer. An error: p does not wait (ErrNoWait: TLS,
// or not Linux; ErrClosed), wait some other way.
func (w *Watcher) Watch(rd *Readiness, p *Poller, f func()) error {
	if w.shut.Load() {
		return ErrClosed
	}
	fd, err := rd.fd()
	if err != nil {
		return err
	}
	watch := p.Watch(fd, func() {
		rd.borrow()
		f()
	})
	w.watch.Store(watch) // before it is armed: f may call Rearm at once
	return w.arm(rd, watch)
}

// Rearm has the Poller wait again once f has read all there was; false: it does not
// (the connection is closing, something is buffered, or the poller failed), so wait
// some other way.
func (w *Watcher) Rearm(rd *Readiness) bool {
	watch := w.watch.Load()
	return watch != nil && w.arm(rd, watch) == nil
}

func (w *Watcher) arm(rd *Readiness, watch *Watch) error {
	if rd.Ready() {
		return errBuffered // read first: the poller cannot see what gorilla holds
	}
	rd.giveBack()
	if err := watch.Arm(); err != nil {
		rd.borrow()
		return err
	}
	if w.shut.Load() {
		watch.Cancel() // Shut may have run before the watch was there to cancel
	}
	return nil
}

// Shut marks the connection closing and takes it out of the Poller's set: call it
// before the descriptor closes. If the Poller was waiting, f runs to find the end.
func (w *Watcher) Shut() {
	w.shut.Store(true)
	if watch := w.watch.Load(); watch != nil {
		watch.Cancel()
	}
}
