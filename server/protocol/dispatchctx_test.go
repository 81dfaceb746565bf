package protocol

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/tokens"
)

// afterFuncCtx stands for socket.Conn's context: no values, and an AfterFunc method, which
// ties a child to it. It counts the children tied that way, and the calls to Done (each
// of which would make socket.Conn's context keep a channel).
type afterFuncCtx struct {
	context.Context
	tied  atomic.Int32
	dones atomic.Int32
}

func (c *afterFuncCtx) Value(any) any { return nil }
func (c *afterFuncCtx) Done() <-chan struct{} {
	c.dones.Add(1)
	return c.Context.Done()
}
func (c *afterFuncCtx) AfterFunc(f func()) func() bool {
	c.tied.Add(1)
	return context.AfterFunc(c.Context, f)
}

// Dispatch makes each handler's context straight from the connection's, with the claims
// above the timeout: with a value context in between, the context package could not use
// the connection context's AfterFunc and would watch every event from a goroutine of
// its own. The handler still sees the claims.
func TestDispatchTiesTheHandlerContextToTheConnection(t *testing.T) {
	f := newFixture(t, nil, Options{})
	c := f.connect(t, "1.1", alice)
	ctx := &afterFuncCtx{Context: c.ctx}
	c.ctx = ctx
	var sawClaims bool
	if err := f.svc.table.add(On("test:claims", func(r Request[struct{}]) (any, error) {
		_, sawClaims = tokens.FromContext(r.Ctx)
		return map[string]bool{"ok": true}, nil
	})); err != nil {
		t.Fatal(err)
	}
	if ack := f.send(c, "test:claims", map[string]string{}); ack["ok"] != true {
		t.Fatalf("ack %v", ack)
	}
	if ctx.tied.Load() != 1 {
		t.Fatalf("handler context tied through AfterFunc %d times, want 1", ctx.tied.Load())
	}
	if !sawClaims {
		t.Fatal("the handler's context lost the claims")
	}
	if n := ctx.dones.Load(); n != 0 {
		t.Fatalf("the connection context's Done called %d times: it would keep a channel", n)
	}
}

// A handler's context ends when the connection's does (and when the handler returns:
// nothing stays registered), and one made after the end is done at once.
func TestHandlerContextEndsWithTheConnection(t *testing.T) {
	parent, end := context.WithCancel(context.Background())
	conn := &afterFuncCtx{Context: parent}
	ctx, cancel := withTimeout(conn, time.Minute)
	ctx2, cancel2 := withTimeout(conn, time.Minute)
	cancel2()
	if ctx2.Err() == nil {
		t.Fatal("cancel did not end the context")
	}
	if ctx.Err() != nil {
		t.Fatal("ended before the connection")
	}
	end()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the connection ended and the handler's context did not")
	}
	cancel()
	late, cancelLate := withTimeout(conn, time.Minute)
	defer cancelLate()
	if late.Err() == nil {
		t.Fatal("a context made after the connection ended is not done")
	}
	if dl, ok := late.Deadline(); !ok || time.Until(dl) < 50*time.Second {
		t.Fatalf("deadline %v %v, want a minute from now", dl, ok)
	}
	if n := conn.dones.Load(); n != 0 {
		t.Fatalf("Done called %d times", n)
	}
}
