// Package limit keeps one token-bucket rate limiter per key (a client IP, a user id)
// in bounded memory.
package limit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Keyed limits events per key to n per window, with a burst of n.
type Keyed struct {
	mu      sync.Mutex
	limit   rate.Limit
	burst   int
	idle    time.Duration // a bucket untouched this long is full again and can be dropped
	maxKeys int
	buckets map[string]*bucket
	now     func() time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewKeyed returns a limiter allowing n events per window per key, remembering at most
// maxKeys keys. When full, idle keys are dropped first; if none is idle, the oldest
// goes, which can only make the limiter more lenient, never block an innocent key.
func NewKeyed(n int, window time.Duration, maxKeys int) *Keyed {
	return &Keyed{
		limit:   rate.Every(window / time.Duration(n)),
		burst:   n,
		idle:    window,
		maxKeys: maxKeys,
		buckets: make(map[string]*bucket),
		now:     time.Now,
	}
}

// Allow takes one event for key. When refused it returns how long until one is allowed.
func (k *Keyed) Allow(key string) (ok bool, retryAfter time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	b := k.buckets[key]
	if b == nil {
		if len(k.buckets) >= k.maxKeys {
			k.evict(now)
		}
		b = &bucket{lim: rate.NewLimiter(k.limit, k.burst)}
		k.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, k.idle
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // a refused attempt does not consume the future token
		return false, d
	}
	return true, 0
}

// Len is the number of keys remembered.
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}

func (k *Keyed) evict(now time.Time) {
	var oldestKey string
	var oldest time.Time
	for key, b := range k.buckets {
		if now.Sub(b.seen) >= k.idle {
			delete(k.buckets, key)
			continue
		}
		if oldestKey == "" || b.seen.Before(oldest) {
			oldestKey, oldest = key, b.seen
		}
	}
	if len(k.buckets) >= k.maxKeys && oldestKey != "" {
		delete(k.buckets, oldestKey)
	}
}

// Counter counts holders per key (connections per user or per IP).
type Counter struct {
	mu sync.Mutex
	n  map[string]int
}

// NewCounter returns an empty Counter.
func NewCounter() *Counter { return &Counter{n: make(map[string]int)} }

// Count is the number of holders of key.
func (c *Counter) Count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// Acquire adds a holder of key unless max (> 0) are held already.
func (c *Counter) Acquire(key string, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if max > 0 && c.n[key] >= max {
		return false
	}
	c.n[key]++
	return true
}

// Release removes a holder of key.
func (c *Counter) Release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key] <= 1 {
		delete(c.n, key)
		return
	}
	c.n[key]--
}
