package hub

import (
	"sort"
	"testing"
)

func subsIDs(s *channelSubs) []string {
	var ids []string
	s.each(func(id string, c Conn) {
		if c.ID() != id {
			panic("each: id " + id + " for conn " + c.ID())
		}
		ids = append(ids, id)
	})
	sort.Strings(ids)
	return ids
}

// One subscriber is kept without a map; a second makes one; each, get and del agree
// throughout, and replacing a subscriber's target (a recovery's wrapper) keeps its id.
func TestChannelSubsOneThenMany(t *testing.T) {
	a, b, c := &fakeConn{id: "a"}, &fakeConn{id: "b"}, &fakeConn{id: "c"}
	var s channelSubs
	if s.len() != 0 || len(subsIDs(&s)) != 0 {
		t.Fatal("empty is not empty")
	}
	s.set("a", a)
	if s.many != nil || s.len() != 1 {
		t.Fatalf("one subscriber made a map or len %d", s.len())
	}
	r := &replaying{Conn: a}
	s.set("a", r)
	if got, ok := s.get("a"); !ok || got != Conn(r) || s.many != nil || s.len() != 1 {
		t.Fatalf("replacing the lone subscriber: %v %v len %d", got, ok, s.len())
	}
	s.set("b", b)
	s.set("c", c)
	if s.len() != 3 || len(subsIDs(&s)) != 3 {
		t.Fatalf("three: len %d ids %v", s.len(), subsIDs(&s))
	}
	if got, _ := s.get("a"); got != Conn(r) {
		t.Fatal("the first subscriber's target was lost when the map was made")
	}
	s.del("b")
	if _, ok := s.get("b"); ok || s.len() != 2 {
		t.Fatalf("after del: len %d", s.len())
	}
	s.del("a")
	s.del("c")
	s.del("nobody")
	if s.len() != 0 {
		t.Fatalf("all gone: len %d", s.len())
	}
	var one channelSubs
	one.set("a", a)
	one.del("b") // not its subscriber
	if one.len() != 1 {
		t.Fatal("del of another id removed the lone subscriber")
	}
}
