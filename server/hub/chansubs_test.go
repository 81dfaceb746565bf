package hub

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// chanSubs answers as a map would, below and above the slice's size and across the
// switch to a map, and keeps nothing once emptied.
func TestChanSubsActsAsAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, span := range []int{3, fewChanSubs, fewChanSubs + 1, 4 * fewChanSubs} {
		var s chanSubs
		want := map[string]subscription{}
		for range 5000 {
			ch := fmt.Sprint("ch-", r.IntN(span))
			switch r.IntN(3) {
			case 0, 1:
				sub := subscription{}
				if r.IntN(2) == 0 {
					sub.member = &Member{UserID: ch}
				}
				s.set(ch, sub)
				want[ch] = sub
			case 2:
				got, ok := s.del(ch)
				w, wok := want[ch]
				if ok != wok || got != w {
					t.Fatalf("span %d: del %s = %v %v, want %v %v", span, ch, got, ok, w, wok)
				}
				delete(want, ch)
			}
			if s.len() != len(want) {
				t.Fatalf("span %d: len %d, want %d", span, s.len(), len(want))
			}
			got, ok := s.get(ch)
			w, wok := want[ch]
			if ok != wok || got != w {
				t.Fatalf("span %d: get %s = %v %v, want %v %v", span, ch, got, ok, w, wok)
			}
		}
		seen := map[string]subscription{}
		for ch, sub := range s.all() {
			seen[ch] = sub
		}
		if len(seen) != len(want) {
			t.Fatalf("span %d: all yielded %d channels, want %d", span, len(seen), len(want))
		}
		for ch, w := range want {
			if seen[ch] != w {
				t.Fatalf("span %d: all yielded %v for %s, want %v", span, seen[ch], ch, w)
			}
		}
		for ch := range want {
			s.del(ch)
		}
		if s.few != nil || s.many != nil {
			t.Fatalf("span %d: an emptied set keeps %d slots and a map: %v", span, cap(s.few), s.many != nil)
		}
	}
}
