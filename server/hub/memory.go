package hub

import (
	"context"
	"hash/maphash"
	"slices"
	"strings"
	"sync"

	"github.com/jetsocket/jetsocket/server/history"
)

// The single-node backends, checked against the interfaces here and against their
// contract by the suite in hubtest, as the Redis ones are.
var (
	_ Broker         = (*MemoryBroker)(nil)
	_ Presence       = (*MemoryPresence)(nil)
	_ Counts         = (*MemoryCounts)(nil)
	_ Historian      = (*MemoryBroker)(nil)
	_ PositionBroker = (*MemoryBroker)(nil)
)

// MemoryBroker is the single-node Broker: Publish delivers at once, on the caller's
// goroutine. With a history store, a Positioned message on a channel whose policy
// keeps history is appended to it first, and gets its position.
type MemoryBroker struct {
	deliver func(Message)
	store   history.Store // nil: no history
	policy  history.Policy
	seed    maphash.Seed
	// order serializes appending and delivering per channel (by hash), so that
	// subscribers get a channel's publications in offset order.
	order [256]sync.Mutex
}

// NewMemoryBroker returns a single-node Broker without history.
func NewMemoryBroker() *MemoryBroker { return &MemoryBroker{} }

// NewMemoryBrokerWithHistory returns a single-node Broker that keeps the history the
// policy asks for in store.
func NewMemoryBrokerWithHistory(store history.Store, policy history.Policy) *MemoryBroker {
	return &MemoryBroker{store: store, policy: policy, seed: maphash.MakeSeed()}
}

func (b *MemoryBroker) Start(deliver func(Message)) { b.deliver = deliver }

func (b *MemoryBroker) Publish(ctx context.Context, m Message) error {
	_, err := b.PublishAt(ctx, m)
	return err
}

// PublishAt is Publish that returns the position m was given (zero: none).
func (b *MemoryBroker) PublishAt(ctx context.Context, m Message) (history.Position, error) {
	l := b.HistoryLimits(m.Channel)
	if !l.On() || !m.Positioned() {
		b.deliver(m)
		return history.Position{}, nil
	}
	mu := &b.order[maphash.String(b.seed, m.Channel)%uint64(len(b.order))]
	mu.Lock()
	defer mu.Unlock()
	pos, err := b.store.Add(ctx, m.Channel, history.Publication{Event: m.Event, Data: m.Data, UserID: m.UserID, Except: m.ExceptSocketID}, l)
	if err != nil {
		// Delivered all the same, without a position: live delivery does not depend
		// on the history.
		b.deliver(m)
		return history.Position{}, err
	}
	m.Offset, m.Epoch = pos.Offset, pos.Epoch
	b.deliver(m)
	return pos, nil
}

func (b *MemoryBroker) HistoryLimits(channel string) history.Limits {
	if b.store == nil {
		return history.Limits{}
	}
	return b.policy.For(channel)
}

func (b *MemoryBroker) Read(ctx context.Context, channel string, q history.Query, l history.Limits) (history.Result, error) {
	if b.store == nil {
		return history.Result{}, ErrNoHistory
	}
	return b.store.Read(ctx, channel, q, l)
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
