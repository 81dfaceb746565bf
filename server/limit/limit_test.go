package limit

import (
	"fmt"
	"testing"
	"time"
)

func TestKeyedAllowsNPerWindowPerKey(t *testing.T) {
	now := time.Unix(1000, 0)
	k := NewKeyed(3, time.Minute, 100)
	k.now = func() time.Time { return now }
	for i := range 3 {
		if ok, _ := k.Allow("a"); !ok {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	ok, retry := k.Allow("a")
	if ok || retry <= 0 || retry > 20*time.Second {
		t.Fatalf("4th attempt: ok=%v retry=%v, want refused with retry about 20s", ok, retry)
	}
	if ok, _ := k.Allow("b"); !ok {
		t.Fatal("another key shares the bucket")
	}
	// Refused attempts must not push the retry time further out.
	for range 10 {
		k.Allow("a")
	}
	now = now.Add(retry)
	if ok, _ := k.Allow("a"); !ok {
		t.Fatal("not allowed after Retry-After")
	}
}

func TestKeyedBoundedMemory(t *testing.T) {
	now := time.Unix(1000, 0)
	k := NewKeyed(1, time.Minute, 50)
	k.now = func() time.Time { return now }
	for i := range 1000 {
		now = now.Add(time.Millisecond)
		k.Allow(fmt.Sprint("ip-", i))
	}
	if n := k.Len(); n > 50 {
		t.Fatalf("remembers %d keys, cap 50", n)
	}
	// Idle keys are dropped first.
	now = now.Add(2 * time.Minute)
	k.Allow("fresh")
	if n := k.Len(); n != 1 {
		t.Fatalf("after idle eviction %d keys remain, want 1", n)
	}
}

func TestCounter(t *testing.T) {
	c := NewCounter()
	if !c.Acquire("u", 2) || !c.Acquire("u", 2) || c.Acquire("u", 2) {
		t.Fatal("max 2 not enforced")
	}
	if !c.Acquire("v", 2) || !c.Acquire("w", 0) {
		t.Fatal("keys are independent; 0 is unlimited")
	}
	c.Release("u")
	if c.Count("u") != 1 || !c.Acquire("u", 2) {
		t.Fatal("release")
	}
	c.Release("u")
	c.Release("u")
	c.Release("u")
	if c.Count("u") != 0 || len(c.n) != 3-1 {
		t.Fatalf("released keys must be forgotten: %v", c.n)
	}
}
