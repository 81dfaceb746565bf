package engine

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// An idle connection whose goroutine waits for its client keeps that goroutine's stack,
// 2 KiB at the least. A Poller waits for all of them in one goroutine (its own epoll
// set, beside the runtime's) and runs a connection's reading on a worker when its client
// sends: an idle connection has no goroutine at all.
//
// The runtime's poller keeps watching the same sockets; it only marks them readable,
// with nobody waiting there. Each watch is one-shot: once it fires, it stays quiet until
// the worker has read everything and arms it again.

// Poller waits for the clients of many connections in one goroutine.
type Poller struct {
	epfd    int
	wakefd  int // an eventfd that ends the loop (Close)
	workers *Workers

	mu      sync.Mutex
	watches map[int32]*Watch // by file descriptor
	gen     uint32           // the last Watch's; 0 is the wake eventfd's
	closed  bool
	done    chan struct{} // the loop has returned
}

// Watch is one connection's registration with a Poller.
type Watch struct {
	p   *Poller
	fd  int32
	gen uint32 // tells this watch from an earlier one on a reused descriptor
	f   func() // runs on a worker when the client has sent something, or the watch was cancelled while armed

	mu    sync.Mutex
	state watchState
}

type watchState uint8

const (
	watchArmed     watchState = iota + 1 // waiting for the client (the zero state: not yet armed)
	watchBusy                            // fired: f runs, the watch is quiet until Arm
	watchCancelled                       // out of the epoll set for good
)

// NewPoller starts a Poller whose watches run their functions on workers.
func NewPoller(workers *Workers) (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(wakefd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	p := &Poller{epfd: epfd, wakefd: wakefd, workers: workers, watches: make(map[int32]*Watch), done: make(chan struct{})}
	go p.loop()
	return p, nil
}

// Watch registers fd, not yet armed (Arm): f will run on a worker each time the client
// has sent something (or hung up) after an Arm. fd must stay open until Cancel.
func (p *Poller) Watch(fd int, f func()) *Watch {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	if p.gen == 0 {
		p.gen++
	}
	w := &Watch{p: p, fd: int32(fd), gen: p.gen, f: f}
	if p.closed {
		w.state = watchCancelled
		return w
	}
	p.watches[w.fd] = w
	return w
}

// ErrWatchCancelled is Arm's answer after Cancel: the connection is closing.
var ErrWatchCancelled = errors.New("engine: watch cancelled")

// Arm waits for the client (again, after f has read all there was), one-shot: after it
// fires, the watch stays quiet until the next Arm. An error: it is not armed (after
// Cancel, ErrWatchCancelled).
func (w *Watch) Arm() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	op := unix.EPOLL_CTL_MOD
	switch w.state {
	case 0:
		op = unix.EPOLL_CTL_ADD
	case watchBusy:
	case watchCancelled:
		return ErrWatchCancelled
	default:
		return errors.New("engine: watch armed twice")
	}
	if err := w.ctl(op); err != nil {
		w.state = watchCancelled
		w.p.forget(w)
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	w.state = watchArmed
	return nil
}

// ctl arms w, one-shot. Under w.mu.
func (w *Watch) ctl(op int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: w.fd, Pad: int32(w.gen)}
	return unix.EpollCtl(w.p.epfd, op, int(w.fd), &ev)
}

func (p *Poller) forget(w *Watch) {
	p.mu.Lock()
	if p.watches[w.fd] == w {
		delete(p.watches, w.fd)
	}
	p.mu.Unlock()
}

func (p *Poller) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return // the set is gone: nothing more can be watched
		}
		for _, ev := range events[:n] {
			if ev.Fd == int32(p.wakefd) && ev.Pad == 0 {
				return
			}
			p.mu.Lock()
			w := p.watches[ev.Fd]
			p.mu.Unlock()
			if w != nil && w.gen == uint32(ev.Pad) {
				w.fire()
			}
		}
	}
}

// fire starts f for an armed watch.
func (w *Watch) fire() {
	w.mu.Lock()
	armed := w.state == watchArmed
	if armed {
		w.state = watchBusy
	}
	w.mu.Unlock()
	if armed {
		w.p.workers.Go(w.f)
	}
}

// Cancel takes the descriptor out of the set, before it is closed. If the watch was
// armed, f runs (on a worker) to find the connection's end; if f is running, its next
// Arm answers ErrWatchCancelled. Later calls do nothing.
func (w *Watch) Cancel() {
	w.mu.Lock()
	prev := w.state
	if prev != watchCancelled {
		w.state = watchCancelled
		if prev != 0 {
			_ = unix.EpollCtl(w.p.epfd, unix.EPOLL_CTL_DEL, int(w.fd), nil)
		}
		w.p.forget(w)
	}
	w.mu.Unlock()
	if prev == watchArmed {
		w.p.workers.Go(w.f)
	}
}

// Watching is the number of descriptors in the set.
func (p *Poller) Watching() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.watches)
}

// Close ends the loop; watches still registered never fire. Cancel them first.
func (p *Poller) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	if _, err := unix.Write(p.wakefd, one); err != nil {
		return fmt.Errorf("poller wake: %w", err)
	}
	<-p.done
	_ = unix.Close(p.wakefd)
	return unix.Close(p.epfd)
}
