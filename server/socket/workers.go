package socket

import "time"

// workers runs the deep part of reading a connection (gorilla's frame parsing, a
// packet's decoding and its handler) for the connections whose own goroutines wait for
// their clients on a small stack (Server.serve). A worker's stack grows once and serves
// every connection after; a connection's goroutine never grows. There is no cap: a job
// waits for no free worker (a client that sends half a frame holds one until the rest
// comes or its read deadline passes, as it held its own goroutine before), and workers
// with nothing to do for workerIdle end.
type workers struct {
	jobs chan func() // unbuffered: a send succeeds only when a worker is idle
}

// workerIdle is how long a worker waits for a job before it ends: long enough that a
// steady load keeps its workers, short enough that a burst's go away.
const workerIdle = 10 * time.Second

func newWorkers() *workers { return &workers{jobs: make(chan func())} }

// do runs f on a worker and returns when it has.
func (p *workers) do(f func()) {
	done := make(chan struct{})
	job := func() {
		defer close(done)
		f()
	}
	select {
	case p.jobs <- job:
	default:
		go p.work(job)
	}
	<-done
}

func (p *workers) work(job func()) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		job()
		idle.Reset(workerIdle)
		select {
		case job = <-p.jobs:
		case <-idle.C:
			return
		}
	}
}
