package hub

import (
	"context"
	"slices"
	"strings"
	"sync"
)

// The single-node backends, checked against the interfaces here and against their
// contract by the suite in hubtest, as the Redis ones are.
var (
	_ Broker   = (*MemoryBroker)(nil)
	_ Presence = (*MemoryPresence)(nil)
	_ Counts   = (*MemoryCounts)(nil)
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
		u.member = m
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

// MemoryCounts is the single-node Counts.
type MemoryCounts struct {
	mu sync.Mutex
	n  map[string]int
}

// NewMemoryCounts returns a single-node Counts.
func NewMemoryCounts() *MemoryCounts { return &MemoryCounts{n: make(map[string]int)} }

func (c *MemoryCounts) Add(_ context.Context, channel string, delta int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := c.n[channel] + delta
	if total <= 0 {
		delete(c.n, channel)
		return 0, nil
	}
	c.n[channel] = total
	return total, nil
}

func (c *MemoryCounts) All(_ context.Context, prefix string) (map[string]int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int)
	for ch, n := range c.n {
		if strings.HasPrefix(ch, prefix) {
			out[ch] = n
		}
	}
	return out, nil
}

func (c *MemoryCounts) Get(_ context.Context, channel string) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[channel], nil
}
