package hub

import (
	"context"
	"slices"
	"strings"
	"sync"
)

// MemoryBroker is the single-node Broker: Publish delivers at once, on the caller's
// goroutine.
type MemoryBroker struct {
	deliver func(Message)
}

// NewMemoryBroker returns a single-node Broker.
func NewMemoryBroker() *MemoryBroker { return &MemoryBroker{} }

func (b *MemoryBroker) Start(deliver func(Message)) { b.deliver = deliver }

func (b *MemoryBroker) Publish(_ context.Context, m Message) error {
	b.deliver(m)
	return nil
}

func (b *MemoryBroker) Close() error { return nil }

// MemoryPresence is the single-node Presence.
type MemoryPresence struct {
	mu       sync.Mutex
	channels map[string]map[string]*presenceUser // channel → user id → user
}

type presenceUser struct {
	member  Member
	sockets map[string]bool
}

// NewMemoryPresence returns a single-node Presence.
func NewMemoryPresence() *MemoryPresence {
	return &MemoryPresence{channels: make(map[string]map[string]*presenceUser)}
}

func (p *MemoryPresence) Join(_ context.Context, channel, socketID string, m Member, max int) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	users := p.channels[channel]
	if users == nil {
		users = make(map[string]*presenceUser)
		p.channels[channel] = users
	}
	u := users[m.UserID]
	if u != nil {
		u.sockets[socketID] = true
		return false, nil
	}
	if max > 0 && len(users) >= max {
		return false, ErrFull
	}
	users[m.UserID] = &presenceUser{member: m, sockets: map[string]bool{socketID: true}}
	return true, nil
}

func (p *MemoryPresence) Leave(_ context.Context, channel, socketID, userID string) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	users := p.channels[channel]
	u := users[userID]
	if u == nil || !u.sockets[socketID] {
		return false, nil
	}
	delete(u.sockets, socketID)
	if len(u.sockets) > 0 {
		return false, nil
	}
	delete(users, userID)
	if len(users) == 0 {
		delete(p.channels, channel)
	}
	return true, nil
}

func (p *MemoryPresence) Members(_ context.Context, channel string) ([]Member, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	users := p.channels[channel]
	out := make([]Member, 0, len(users))
	for _, u := range users {
		out = append(out, u.member)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.UserID, b.UserID) })
	return out, nil
}
