package engine

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pipe is a pipe whose read end a Poller watches.
func pipe(t *testing.T) (r, w int) {
	t.Helper()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(fds[0]); _ = unix.Close(fds[1]) })
	return fds[0], fds[1]
}

func newPoller(t *testing.T) *Poller {
	t.Helper()
	p, err := NewPoller(NewWorkers())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func fired(t *testing.T, ch <-chan struct{}, want bool, what string) {
	t.Helper()
	wait := 2 * time.Second
	if !want {
		wait = 100 * time.Millisecond
	}
	select {
	case <-ch:
		if !want {
			t.Fatalf("%s: ran, and should not have", what)
		}
	case <-time.After(wait):
		if want {
			t.Fatalf("%s: did not run", what)
		}
	}
}

// A watch fires once when its descriptor is readable, stays quiet until armed again,
// and fires again then if there is still something to read.
func TestWatchFiresOnceUntilArmedAgain(t *testing.T) {
	p := newPoller(t)
	r, w := pipe(t)
	ran := make(chan struct{}, 10)
	watch := p.Watch(r, func() { ran <- struct{}{} })
	if err := watch.Arm(); err != nil {
		t.Fatal(err)
	}
	fired(t, ran, false, "nothing written")
	if _, err := unix.Write(w, []byte("x")); err != nil {
		t.Fatal(err)
	}
	fired(t, ran, true, "written")
	if _, err := unix.Write(w, []byte("y")); err != nil {
		t.Fatal(err)
	}
	fired(t, ran, false, "written again before Arm")
	if err := watch.Arm(); err != nil {
		t.Fatal(err)
	}
	fired(t, ran, true, "armed with bytes unread") // level-triggered: what is there counts
	var b [8]byte
	_, _ = unix.Read(r, b[:])
	if err := watch.Arm(); err != nil {
		t.Fatal(err)
	}
	fired(t, ran, false, "armed with nothing to read")
	if err := watch.Arm(); err == nil {
		t.Fatal("armed twice without firing")
	}
}

// Cancel while armed runs f (to find the connection's end); while f runs, the next Arm
// says the watch was cancelled; either way the descriptor leaves the set.
func TestWatchCancel(t *testing.T) {
	p := newPoller(t)
	r, w := pipe(t)
	ran := make(chan struct{}, 10)
	watch := p.Watch(r, func() { ran <- struct{}{} })
	if err := watch.Arm(); err != nil {
		t.Fatal(err)
	}
	if p.Watching() != 1 {
		t.Fatalf("watching %d", p.Watching())
	}
	watch.Cancel()
	fired(t, ran, true, "cancelled while armed")
	watch.Cancel()
	fired(t, ran, false, "cancelled twice")
	if p.Watching() != 0 {
		t.Fatalf("watching %d after Cancel", p.Watching())
	}
	if _, err := unix.Write(w, []byte("x")); err != nil {
		t.Fatal(err)
	}
	fired(t, ran, false, "written after Cancel")
	if err := watch.Arm(); !errors.Is(err, ErrWatchCancelled) {
		t.Fatalf("Arm after Cancel: %v", err)
	}

	busy := p.Watch(r, func() { ran <- struct{}{} })
	if err := busy.Arm(); err != nil {
		t.Fatal(err)
	}
	fired(t, ran, true, "the second watch, with a byte unread")
	busy.Cancel() // as Close does while a worker reads
	fired(t, ran, false, "cancelled while running")
	if err := busy.Arm(); !errors.Is(err, ErrWatchCancelled) {
		t.Fatalf("Arm after a Cancel while running: %v", err)
	}
}

// A watch on a descriptor number that an earlier, cancelled watch had does not fire for
// the earlier one, and the earlier one's Cancel does not remove it.
func TestWatchOnAReusedDescriptor(t *testing.T) {
	p := newPoller(t)
	r, w := pipe(t)
	old := make(chan struct{}, 10)
	first := p.Watch(r, func() { old <- struct{}{} })
	if err := first.Arm(); err != nil {
		t.Fatal(err)
	}
	first.Cancel()
	<-old // the cancel's run
	cur := make(chan struct{}, 10)
	second := p.Watch(r, func() { cur <- struct{}{} })
	if err := second.Arm(); err != nil {
		t.Fatal(err)
	}
	first.Cancel()
	if p.Watching() != 1 {
		t.Fatalf("watching %d: the old watch's Cancel removed the new one", p.Watching())
	}
	if _, err := unix.Write(w, []byte("x")); err != nil {
		t.Fatal(err)
	}
	fired(t, cur, true, "the new watch")
	fired(t, old, false, "the old watch")
}

// Close ends the poller's goroutine; a watch made after it is cancelled from the start.
func TestPollerClose(t *testing.T) {
	p, err := NewPoller(NewWorkers())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	default:
		t.Fatal("the loop still runs")
	}
	r, _ := pipe(t)
	if err := p.Watch(r, func() {}).Arm(); !errors.Is(err, ErrWatchCancelled) {
		t.Fatalf("Arm on a closed poller: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
