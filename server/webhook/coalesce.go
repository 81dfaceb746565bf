package webhook

import (
	"sync"
	"time"
)

// Coalesce returns a send that passes each channel's event of one name on at most once
// per window: the first is sent when its window ends and the others of that window are
// dropped. A page load that makes a thousand clients miss one cache channel is one
// cache_miss webhook, not a thousand. Events of other names pass straight through.
func Coalesce(window time.Duration, name string, send func(Event)) func(Event) {
	var mu sync.Mutex
	pending := map[string]bool{}
	return func(ev Event) {
		if ev.Name != name {
			send(ev)
			return
		}
		mu.Lock()
		if pending[ev.Channel] {
			mu.Unlock()
			return
		}
		pending[ev.Channel] = true
		mu.Unlock()
		time.AfterFunc(window, func() {
			mu.Lock()
			delete(pending, ev.Channel)
			mu.Unlock()
			send(ev)
		})
	}
}
