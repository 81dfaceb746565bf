//go:build !linux

package engine

import "errors"

// Poller needs epoll: elsewhere NewPoller fails and connections wait on goroutines of
// their own (Readiness, or a plain read).
type Poller struct{}

// Watch is one connection's registration with a Poller.
type Watch struct{}

// ErrWatchCancelled is Arm's answer after Cancel.
var ErrWatchCancelled = errors.New("engine: watch cancelled")

// NewPoller fails: no epoll here.
func NewPoller(*Workers) (*Poller, error) { return nil, errors.New("engine: no poller on this system") }

func (p *Poller) Watch(int, func()) *Watch { return &Watch{} }
func (p *Poller) Watching() int            { return 0 }
func (p *Poller) Close() error             { return nil }
func (w *Watch) Arm() error                { return ErrWatchCancelled }
func (w *Watch) Cancel()                   {}
