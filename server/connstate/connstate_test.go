package connstate

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A State's life goes one way: not begun (events refused), live, ended (events refused,
// never begun again); Begin and End each succeed once.
func TestLifeGoesOneWay(t *testing.T) {
	var s State
	if s.Enter() {
		t.Fatal("an event was taken before Begin")
	}
	ran := 0
	if !s.Begin(func() { ran++ }) || ran != 1 {
		t.Fatalf("Begin: ran start %d times", ran)
	}
	if s.Begin(func() { ran++ }) || ran != 1 {
		t.Fatal("a second Begin was taken")
	}
	if !s.Enter() {
		t.Fatal("a live state refused an event")
	}
	s.Exit()
	if s.Ended() {
		t.Fatal("Ended before End")
	}
	if !s.End() {
		t.Fatal("End of a live state returned false")
	}
	if s.End() {
		t.Fatal("a second End returned true")
	}
	if s.Enter() || !s.Ended() {
		t.Fatal("an event was taken after End")
	}
	if s.Begin(func() { ran++ }) || ran != 1 {
		t.Fatal("an ended state was begun again")
	}
}

// End of a state never begun returns false (nothing to tear down) and ends it, so that a
// Begin racing it fails.
func TestEndBeforeBegin(t *testing.T) {
	var s State
	if s.End() {
		t.Fatal("End of a state never begun returned true")
	}
	if s.Begin(nil) {
		t.Fatal("Begin after End was taken")
	}
}

// End waits for the events in flight, and none starts after it (run with -race).
func TestEndWaitsForEventsInFlight(t *testing.T) {
	var s State
	s.Begin(nil)
	if !s.Enter() {
		t.Fatal("Enter refused")
	}
	ended := make(chan bool)
	go func() { ended <- s.End() }()
	select {
	case <-ended:
		t.Fatal("End returned with an event in flight")
	case <-time.After(50 * time.Millisecond):
	}
	s.Exit()
	if !<-ended {
		t.Fatal("End returned false")
	}

	var m State
	m.Begin(nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	after := 0 // events taken after End returned
	var endReturned atomic.Bool
	done := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if m.Enter() {
					// Not m.Ended(): a read lock taken inside an event waits behind End's
					// pending write lock, which waits for this event.
					if endReturned.Load() {
						mu.Lock()
						after++
						mu.Unlock()
					}
					m.Exit()
				}
			}
		})
	}
	m.End()
	endReturned.Store(true)
	close(done)
	wg.Wait()
	if after != 0 {
		t.Fatalf("%d events ran after End", after)
	}
}

// The rate limiters are made on first use, with the limits given then, and kept.
func TestLimitersAreMadeOnFirstUse(t *testing.T) {
	var s State
	if s.subscribe != nil || s.rare != nil {
		t.Fatal("limiters made before use")
	}
	for i := range 3 {
		if !s.AllowSubscribe(1, 3) {
			t.Fatalf("subscribe %d refused within the burst", i)
		}
	}
	if s.AllowSubscribe(1000, 1000) {
		t.Fatal("a fourth subscribe was allowed: the limiter was made again")
	}
	if !s.AllowClientEvent(1, 1) || s.AllowClientEvent(1, 1) {
		t.Fatal("the client event limiter does not limit")
	}
}

func TestGrantsAndSignIn(t *testing.T) {
	var s State
	if _, ok := s.GrantOf("private-x"); ok {
		t.Fatal("a grant before any")
	}
	s.RevokeGrant("private-x") // harmless with none
	s.SetGrant("private-x", Grant{Auth: "k:sig", ChannelData: "{}"})
	if g, ok := s.GrantOf("private-x"); !ok || g.Auth != "k:sig" || g.ChannelData != "{}" {
		t.Fatalf("grant %+v %v", g, ok)
	}
	s.RevokeGrant("private-x")
	if _, ok := s.GrantOf("private-x"); ok {
		t.Fatal("a revoked grant is still there")
	}
	if prev := s.SignIn("7"); prev != "" {
		t.Fatalf("first sign-in: previous %q", prev)
	}
	if prev := s.SignIn("8"); prev != "7" {
		t.Fatalf("second sign-in: previous %q, want 7", prev)
	}
}

func TestExpiryIsReplacedAndStopped(t *testing.T) {
	var s State
	first := time.AfterFunc(time.Hour, func() {})
	second := time.AfterFunc(time.Hour, func() {})
	s.SetExpiry(first)
	s.SetExpiry(second)
	if first.Stop() {
		t.Fatal("the replaced timer was still running")
	}
	s.StopExpiry()
	if second.Stop() {
		t.Fatal("StopExpiry left the timer running")
	}
}
