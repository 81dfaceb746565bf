// Package connstate is what the socket protocol (server/protocol) keeps for one
// connection: its life (begun at connect, ended at disconnect, never begun again), its
// rate limiters, expiry timer, sign-in and signed grants. The connection carries it
// (socket.Conn embeds a State; protocol.Conn's ConnState reaches it), so no event looks
// its state up in a registry under a lock every connection shares.
//
// It is a package of its own so that server/socket, which carries the state, need not
// import server/protocol, which fills it; it holds data and its locking, no protocol.
package connstate

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// phase is where a State is in its life.
type phase uint8

const (
	idle  phase = iota // not begun: the connection has not connected yet
	live               // begun, events are taken
	ended              // ended: events are refused, and it is never begun again
)

// State is one connection's protocol state. The zero State is a connection that has not
// connected: Begin makes it live, End ends it for good. It must not be copied.
//
// Its size matters: every idle connection has one (socket.Conn embeds it). What most
// connections never use (a sign-in, a signed grant, client events) hangs off one
// pointer, and the rate limiters are made on first use.
type State struct {
	// life is held for reading by each event in flight (Enter) and for writing by Begin
	// and End: once End returns, no event is running and none will start.
	life  sync.RWMutex
	phase phase

	// UserCounted and IPCounted: the connection holds a place in the per-user and
	// per-address connection counts. Set by Begin's start, read after End.
	UserCounted, IPCounted bool

	mu        sync.Mutex // guards what follows
	subscribe *rate.Limiter
	expiry    *time.Timer
	rare      *rare
}

// rare is the state few connections have.
type rare struct {
	clientEvents *rate.Limiter
	signedIn     string           // the user a backend signed the connection in as
	grants       map[string]Grant // channels granted by a backend's signature
}

// Grant is a subscription a backend's signature allowed: the request's signature and
// channel_data, checked again with them when the token is refreshed.
type Grant struct {
	Auth, ChannelData string
}

// Begin makes s live and runs start (nil: nothing) before any event is taken. It
// returns false, without running start, when s was begun before or has ended: a
// connection's state is made once.
func (s *State) Begin(start func()) bool {
	s.life.Lock()
	defer s.life.Unlock()
	if s.phase != idle {
		return false
	}
	s.phase = live
	if start != nil {
		start()
	}
	return true
}

// End ends s once the events in flight are done; no event starts after it. It returns
// false when s had ended already or was never begun (it is ended then too, so that a
// Begin racing it fails): the caller tears down only on true, so at most once.
func (s *State) End() bool {
	s.life.Lock()
	defer s.life.Unlock()
	was := s.phase
	s.phase = ended
	return was == live
}

// Enter admits one event: false when s is not live (the connection has not connected,
// or has gone). On true the caller must call Exit when the event is done, and must not
// call Begin, End, Enter or Ended meanwhile.
func (s *State) Enter() bool {
	s.life.RLock()
	if s.phase != live {
		s.life.RUnlock()
		return false
	}
	return true
}

// Exit ends an event Enter admitted.
func (s *State) Exit() { s.life.RUnlock() }

// Ended reports whether End was called. Not from inside an event (Enter): its read lock
// would wait behind a pending End, which waits for the event.
func (s *State) Ended() bool {
	s.life.RLock()
	defer s.life.RUnlock()
	return s.phase == ended
}

// AllowSubscribe takes a subscribe attempt from the connection's subscribe rate limiter,
// made on first use with limit per second and burst.
func (s *State) AllowSubscribe(limit rate.Limit, burst int) bool {
	s.mu.Lock()
	l := limiter(&s.subscribe, limit, burst)
	s.mu.Unlock()
	return l.Allow()
}

// AllowClientEvent takes a client event from the connection's client event rate
// limiter, made on first use with limit per second and burst.
func (s *State) AllowClientEvent(limit rate.Limit, burst int) bool {
	s.mu.Lock()
	l := limiter(&s.rareState().clientEvents, limit, burst)
	s.mu.Unlock()
	return l.Allow()
}

// limiter is *l, made with limit and burst if nil. Under mu.
func limiter(l **rate.Limiter, limit rate.Limit, burst int) *rate.Limiter {
	if *l == nil {
		*l = rate.NewLimiter(limit, burst)
	}
	return *l
}

// SetExpiry replaces the expiry timer, stopping the one before (a refreshed token).
func (s *State) SetExpiry(t *time.Timer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.expiry != nil {
		s.expiry.Stop()
	}
	s.expiry = t
}

// StopExpiry stops the expiry timer.
func (s *State) StopExpiry() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.expiry != nil {
		s.expiry.Stop()
	}
}

// SignIn records that the connection is signed in as userID and returns whom it was
// signed in as before ("" for none).
func (s *State) SignIn(userID string) (prev string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rareState()
	prev, r.signedIn = r.signedIn, userID
	return prev
}

// SetGrant records channel as granted by g; RevokeGrant forgets it.
func (s *State) SetGrant(channel string, g Grant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rareState()
	if r.grants == nil {
		r.grants = make(map[string]Grant)
	}
	r.grants[channel] = g
}

// RevokeGrant forgets channel's grant, if it has one.
func (s *State) RevokeGrant(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rare != nil {
		delete(s.rare.grants, channel)
	}
}

// GrantOf is channel's grant; ok false when a backend's signature did not allow it.
func (s *State) GrantOf(channel string) (g Grant, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rare == nil {
		return Grant{}, false
	}
	g, ok = s.rare.grants[channel]
	return g, ok
}

// rareState is s.rare, made on first use. Under mu.
func (s *State) rareState() *rare {
	if s.rare == nil {
		s.rare = &rare{}
	}
	return s.rare
}
