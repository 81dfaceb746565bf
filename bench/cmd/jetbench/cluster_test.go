package main

import (
	"net/url"
	"testing"
)

// direct-split connects straight to the nodes in nginx's proportions, interleaved.
func TestWeightedFollowsTheSplit(t *testing.T) {
	us := []*url.URL{{Host: "a"}, {Host: "b"}, {Host: "c"}}
	got := weighted(us, []int{2, 5, 3})
	if len(got) != 10 {
		t.Fatalf("%d entries", len(got))
	}
	count := map[string]int{}
	for _, u := range got {
		count[u.Host]++
	}
	if count["a"] != 2 || count["b"] != 5 || count["c"] != 3 {
		t.Fatalf("split %v", count)
	}
	if got[0].Host != "b" || got[1].Host == got[0].Host && got[2].Host == got[0].Host {
		t.Fatalf("not interleaved: %v", got)
	}
	if w := weighted(us, []int{1, -1, 1}); len(w) != 3 {
		t.Fatalf("an unreadable count should fall back to the even split: %v", w)
	}
}

func TestParseLayouts(t *testing.T) {
	ls, err := parseLayouts("1, 3,3-spread")
	if err != nil || len(ls) != 3 || ls[0] != (layout{1, false}) || ls[2] != (layout{3, true}) {
		t.Fatalf("%v, %v", ls, err)
	}
	for _, bad := range []string{"0", "3-spred", ""} {
		if _, err := parseLayouts(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
