package hub

// channelSubs is one channel's subscribers on this node, by socket id. Most channels
// have one: every connection's own user channel, a private chat. A Go map of one
// entry costs about 300 B (its header and a first group of eight slots), per idle
// connection for the user channels (heap profiles, BENCHMARKS.md); a lone subscriber is
// kept in the value itself, and the map is made at the second.
type channelSubs struct {
	one  Conn            // the only subscriber, while many is nil
	many map[string]Conn // two or more (or one left after they were many)
}

func (s *channelSubs) len() int {
	if s.many != nil {
		return len(s.many)
	}
	if s.one != nil {
		return 1
	}
	return 0
}

func (s *channelSubs) get(id string) (Conn, bool) {
	if s.many != nil {
		c, ok := s.many[id]
		return c, ok
	}
	if s.one != nil && s.one.ID() == id {
		return s.one, true
	}
	return nil, false
}

// set makes id's deliveries go to c (a replaying wrapper keeps its connection's id).
func (s *channelSubs) set(id string, c Conn) {
	switch {
	case s.many != nil:
		s.many[id] = c
	case s.one == nil || s.one.ID() == id:
		s.one = c
	default:
		s.many = map[string]Conn{s.one.ID(): s.one, id: c}
		s.one = nil
	}
}

func (s *channelSubs) del(id string) {
	if s.many != nil {
		delete(s.many, id)
		return
	}
	if s.one != nil && s.one.ID() == id {
		s.one = nil
	}
}

// each calls f for every subscriber, in no particular order.
func (s *channelSubs) each(f func(id string, c Conn)) {
	if s.many != nil {
		for id, c := range s.many {
			f(id, c)
		}
		return
	}
	if s.one != nil {
		f(s.one.ID(), s.one)
	}
}
