package protocol

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jetsocket/jetsocket/tokens"
)

// afterFuncCtx stands for socket.Conn's context: no values, and an AfterFunc method, which
// the context package uses to tie a child to it. It counts the children tied that way.
type afterFuncCtx struct {
	context.Context
	tied atomic.Int32
}

func (c *afterFuncCtx) Value(any) any { return nil }
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
}
