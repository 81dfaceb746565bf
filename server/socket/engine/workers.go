package engine

import "time"

// Workers runs the deep part of reading a connection (gorilla's frame parsing, a
// message's decoding and its handler) for the connections whose own goroutines wait for
// their clients on a small stack (Readiness). A worker's stack grows once and serves
// every connection after; a connection's goroutine never grows. There is no cap: a job
// waits for no free worker (a client that sends half a frame holds one until the rest
// comes or its read deadline passes, as it held its own goroutine before), and workers
// with nothing to do for workerIdle end.
type Workers struct {
	jobs chan func() // unbuffered: a send succeeds only when a worker is idle
}

// workerIdle is how long a worker waits for a job before it ends: long enough that a
// steady load keeps its workers, short enough that a burst's go away.
const workerIdle = 10 * time.Second

// NewWorkers returns an empty pool.
func NewWorkers() *Workers { return &Workers{jobs: make(chan func())} }

// Do runs f on a worker and returns when it has.
func (p *Workers) Do(f func()) {
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

// Go runs f on a worker and returns at once.
func (p *Workers) Go(f func()) {
	select {
	case p.jobs <- f:
	default:
		go p.work(f)
	}
}

func (p *Workers) work(job func()) {
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
