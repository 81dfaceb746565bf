package socket

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// A limiter made on first use is made once, whoever asks first, and starts full.
func TestLazyLimiterIsMadeOnce(t *testing.T) {
	var p atomic.Pointer[rate.Limiter]
	got := make(chan *rate.Limiter, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { got <- lazyLimiter(&p, 1, 3) })
	}
	wg.Wait()
	close(got)
	first := p.Load()
	for l := range got {
		if l != first {
			t.Fatal("two limiters made for one slot")
		}
	}
	if !first.AllowN(time.Now(), 3) {
		t.Fatal("a new limiter does not start with its burst")
	}
}
