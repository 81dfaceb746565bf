package socket

import (
	"context"
	"sync"
	"time"
)

// closeCtx is a connection's context: done once the connection closes, with no values
// and no deadline. context.WithCancel's would do, but a cancelCtx keeps the map it makes
// for its first child for good, and every connection handles at least one event (each
// gets a context.WithTimeout child): each idle connection carried that map and the
// cancelCtx, about 330 B (bench heap profiles). A parent that has an AfterFunc method
// is one context.WithTimeout registers with through it, and this one forgets a
// registration once its child is done.
type closeCtx struct {
	mu     sync.Mutex
	closed bool
	done   chan struct{} // made by the first Done
	funcs  *afterFunc    // AfterFunc callbacks neither run nor stopped, newest first
}

// afterFunc is one AfterFunc registration. A list rather than a slice keeps closeCtx at
// 32 bytes (a slice made Conn 272 bytes, the 288-byte size class; it is 256 with this).
type afterFunc struct {
	f    func()
	next *afterFunc
}

// registered counts the callbacks waiting for the close.
func (c *closeCtx) registered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for e := c.funcs; e != nil; e = e.next {
		n++
	}
	return n
}

func (c *closeCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *closeCtx) Value(any) any               { return nil }
func (c *closeCtx) String() string              { return "socket.Conn.Context" }

func (c *closeCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.closed {
			close(c.done)
		}
	}
	return c.done
}

func (c *closeCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return context.Canceled
	}
	return nil
}

// AfterFunc runs f in its own goroutine once the connection closes (at once if it has);
// stop unregisters f, reporting whether it did so before f was started. The context
// package calls it for every child context made directly from this one.
func (c *closeCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	e := &afterFunc{f: f, next: c.funcs}
	c.funcs = e
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for p := &c.funcs; *p != nil; p = &(*p).next {
			if *p == e {
				*p = e.next
				return true
			}
		}
		return false
	}
}

// cancel closes the context and starts the callbacks; later calls do nothing.
func (c *closeCtx) cancel() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.done != nil {
		close(c.done)
	}
	funcs := c.funcs
	c.funcs = nil
	c.mu.Unlock()
	for e := funcs; e != nil; e = e.next {
		go e.f()
	}
}
