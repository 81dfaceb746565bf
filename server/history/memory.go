package history

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

var _ Store = (*Memory)(nil)

// memoryShards spreads channels over locks: publishers on different channels rarely
// wait for each other.
const memoryShards = 64

// sweepEvery is how often a shard drops its expired channels (on its next use), so that
// channels nobody publishes on again do not stay in memory.
const sweepEvery = time.Second

// Memory is the single-node Store: each channel's history is a ring of at most Size
// publications, dropped whole (and its epoch with it) TTL after its last publication.
type Memory struct {
	seed   maphash.Seed
	now    func() time.Time
	shards [memoryShards]memoryShard
}

type memoryShard struct {
	mu        sync.Mutex
	channels  map[string]*stream
	lastSweep time.Time
}

// stream is one channel's history: ring holds the last len(ring) publications, the
// oldest at head once full.
type stream struct {
	epoch   string
	top     uint64
	ring    []Publication
	head    int
	expires time.Time
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return NewMemoryClock(time.Now) }

// NewMemoryClock is NewMemory with a clock of the caller's (tests).
func NewMemoryClock(now func() time.Time) *Memory {
	m := &Memory{seed: maphash.MakeSeed(), now: now}
	for i := range m.shards {
		m.shards[i].channels = make(map[string]*stream)
	}
	return m
}

func (m *Memory) shard(channel string) *memoryShard {
	return &m.shards[maphash.String(m.seed, channel)%memoryShards]
}

// get is channel's live stream, started (a new epoch) when it has none; under sh.mu.
func (sh *memoryShard) get(channel string, now time.Time, l Limits) *stream {
	if now.Sub(sh.lastSweep) >= sweepEvery {
		sh.lastSweep = now
		for ch, s := range sh.channels {
			if !now.Before(s.expires) {
				delete(sh.channels, ch)
			}
		}
	}
	s := sh.channels[channel]
	if s == nil || !now.Before(s.expires) {
		s = &stream{epoch: NewEpoch()}
		sh.channels[channel] = s
	}
	s.expires = now.Add(l.TTL)
	return s
}

func (m *Memory) Add(_ context.Context, channel string, p Publication, l Limits) (Position, error) {
	now := m.now()
	sh := m.shard(channel)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := sh.get(channel, now, l)
	s.top++
	p.Offset = s.top
	switch {
	case len(s.ring) < l.Size:
		if s.head != 0 { // the limit grew since the ring filled: unroll it first
			s.ring = append(s.ring[s.head:], s.ring[:s.head]...)
			s.head = 0
		}
		if len(s.ring) == cap(s.ring) {
			// Grown by doubling up to exactly Size: a full ring holds no spare slots.
			grown := make([]Publication, len(s.ring), min(max(2*cap(s.ring), 8), l.Size))
			copy(grown, s.ring)
			s.ring = grown
		}
		s.ring = append(s.ring, p)
	default:
		if len(s.ring) > l.Size { // the limit shrank: keep the newest
			s.ring = s.ordered(nil)[len(s.ring)-l.Size:]
			s.head = 0
		}
		s.ring[s.head] = p
		s.head = (s.head + 1) % len(s.ring)
	}
	return Position{Epoch: s.epoch, Offset: s.top}, nil
}

// ordered appends the kept publications to dst, oldest first.
func (s *stream) ordered(dst []Publication) []Publication {
	dst = append(dst, s.ring[s.head:]...)
	return append(dst, s.ring[:s.head]...)
}

func (m *Memory) Read(_ context.Context, channel string, q Query, l Limits) (Result, error) {
	now := m.now()
	sh := m.shard(channel)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := sh.channels[channel]
	if s == nil || !now.Before(s.expires) {
		// A reader starts the epoch, but does not extend a live history's life: only
		// publications do.
		s = sh.get(channel, now, l)
	}
	res := Result{Position: Position{Epoch: s.epoch, Offset: s.top}}
	if q.Limit < 0 || len(s.ring) == 0 {
		return res, nil
	}
	oldest := s.ring[s.head].Offset
	skip := 0
	if q.After >= oldest {
		skip = int(q.After - oldest + 1)
	}
	if skip >= len(s.ring) {
		return res, nil
	}
	n := len(s.ring) - skip
	if q.Limit > 0 && q.Limit < n {
		n = q.Limit
	}
	res.Publications = make([]Publication, 0, n)
	for i := range n {
		res.Publications = append(res.Publications, s.ring[(s.head+skip+i)%len(s.ring)])
	}
	return res, nil
}

// Channels is how many channels have a history in memory now (tests, metrics).
func (m *Memory) Channels() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += len(sh.channels)
		sh.mu.Unlock()
	}
	return n
}
