package hub

import "iter"

// chanSubs is one connection's channels and its subscription on each: a short slice,
// searched in order, while the connection has few channels (nearly every connection:
// its user channel and a handful more), and a map once it has more than fewChanSubs
// (MAX_SUBSCRIPTIONS may allow thousands). A map costs about 250 bytes from its first
// entry, held for the connection's life; two entries of the slice cost 48.
type chanSubs struct {
	few  []chanSub
	many map[string]subscription
}

type chanSub struct {
	channel string
	sub     subscription
}

// fewChanSubs is the most channels kept in the slice.
const fewChanSubs = 16

func (s *chanSubs) get(channel string) (subscription, bool) {
	if s.many != nil {
		sub, ok := s.many[channel]
		return sub, ok
	}
	for _, e := range s.few {
		if e.channel == channel {
			return e.sub, true
		}
	}
	return subscription{}, false
}

func (s *chanSubs) set(channel string, sub subscription) {
	if s.many != nil {
		s.many[channel] = sub
		return
	}
	for i := range s.few {
		if s.few[i].channel == channel {
			s.few[i].sub = sub
			return
		}
	}
	if len(s.few) < fewChanSubs {
		s.few = append(s.few, chanSub{channel, sub})
		return
	}
	s.many = make(map[string]subscription, 2*fewChanSubs)
	for _, e := range s.few {
		s.many[e.channel] = e.sub
	}
	s.many[channel] = sub
	s.few = nil
}

// del removes channel; an emptied connection keeps nothing allocated.
func (s *chanSubs) del(channel string) (subscription, bool) {
	if s.many != nil {
		sub, ok := s.many[channel]
		delete(s.many, channel)
		if len(s.many) == 0 {
			s.many = nil
		}
		return sub, ok
	}
	for i, e := range s.few {
		if e.channel == channel {
			last := len(s.few) - 1
			s.few[i] = s.few[last]
			s.few[last] = chanSub{}
			s.few = s.few[:last]
			if last == 0 {
				s.few = nil
			}
			return e.sub, true
		}
	}
	return subscription{}, false
}

func (s *chanSubs) len() int {
	if s.many != nil {
		return len(s.many)
	}
	return len(s.few)
}

// all yields every channel and its subscription, in no particular order.
func (s *chanSubs) all() iter.Seq2[string, subscription] {
	return func(yield func(string, subscription) bool) {
		if s.many != nil {
			for ch, sub := range s.many {
				if !yield(ch, sub) {
					return
				}
			}
			return
		}
		for _, e := range s.few {
			if !yield(e.channel, e.sub) {
				return
			}
		}
	}
}
