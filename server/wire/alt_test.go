package wire

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestAltBuiltOnceAndShared(t *testing.T) {
	var builds atomic.Int32
	f := NewFrame([]byte(`2["e",{}]`)).WithAlt(NewAlt(func() []byte {
		builds.Add(1)
		return []byte(`{"event":"e"}`)
	}))
	if builds.Load() != 0 {
		t.Fatal("built before anyone asked")
	}
	var wg sync.WaitGroup
	for range 50 {
		g := f // frames are copied by value to every recipient
		wg.Go(func() {
			if string(g.Alt()) != `{"event":"e"}` {
				t.Error("wrong alt")
			}
		})
	}
	wg.Wait()
	if n := builds.Load(); n != 1 {
		t.Fatalf("built %d times, want once", n)
	}
	if NewFrame(nil).Alt() != nil {
		t.Fatal("a frame without an alt has one")
	}
	if string(f.Text()) != `2["e",{}]` {
		t.Fatal("the socket.io packet changed")
	}
}
