package socket

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A connection's context ends with the connection, and a child made from it (each
// event's handler context) is cancelled with it; a child that ended first leaves nothing
// registered, and no goroutine watches a child. The context.WithCancel this replaced
// kept a map for its first child for the life of the connection.
func TestConnContextEndsWithTheConnectionAndKeepsNothingPerChild(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.dialWS(t, "alice")
	c := ts.conn(t, "alice")
	ctx := c.Context()
	if ctx.Err() != nil {
		t.Fatal("context ended before the connection closed")
	}

	done, cancel := context.WithTimeout(ctx, time.Minute)
	// Registered through AfterFunc: otherwise the context package watches the child
	// from a goroutine of its own.
	if n := c.ctx.registered(); n != 1 {
		t.Fatalf("%d registrations for one child", n)
	}
	cancel()
	if n := c.ctx.registered(); n != 0 {
		t.Fatalf("a finished child left %d registrations behind", n)
	}
	if !errors.Is(done.Err(), context.Canceled) {
		t.Fatalf("child: %v", done.Err())
	}

	live, cancelLive := context.WithTimeout(ctx, time.Minute)
	defer cancelLive()
	ran := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { close(ran) })
	stopped := context.AfterFunc(ctx, func() { t.Error("a stopped AfterFunc ran") })
	if n := c.ctx.registered(); n != 3 {
		t.Fatalf("%d registrations for three", n)
	}
	if !stopped() {
		t.Fatal("stop before close reported false")
	}
	if stopped() {
		t.Fatal("a second stop reported true")
	}
	c.Close("test")
	for _, ch := range []<-chan struct{}{ctx.Done(), live.Done(), ran} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatal("not cancelled by Close")
		}
	}
	if !errors.Is(ctx.Err(), context.Canceled) || !errors.Is(live.Err(), context.Canceled) {
		t.Fatalf("errors %v, %v", ctx.Err(), live.Err())
	}
	if stop() {
		t.Fatal("stop after the callback started reported true")
	}
	// After the close: a new child is done at once, a new AfterFunc runs.
	late, cancelLate := context.WithCancel(ctx)
	defer cancelLate()
	if late.Err() == nil {
		t.Fatal("a child made after the close is not done")
	}
	ranLate := make(chan struct{})
	context.AfterFunc(ctx, func() { close(ranLate) })
	select {
	case <-ranLate:
	case <-time.After(5 * time.Second):
		t.Fatal("AfterFunc after the close never ran")
	}
}
