// Package hub keeps channel subscriptions and delivers messages to subscribers.
//
// Delivery never goes through go-socket.io's rooms: each message is encoded once, as
// the websocket frame every subscriber gets, and handed to each subscriber
// (Conn.SendFrame), which writes it at once or queues it and never blocks; a
// subscriber that cannot keep up is disconnected by its queue, not waited for.
// Cross-node fan-out sits behind Broker, presence behind Presence and channel counts
// behind Counts, each with an in-memory implementation here and one contract
// (hubtest); a message from another node enters through the same deliver path as a
// local one. The hub's own subscriptions are the truth its node's shared entries are
// rewritten from when they drift (Resync).
package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/wire"
)

// Events the hub emits.
const (
	EventMemberAdded   = "jetsocket:member_added"
	EventMemberRemoved = "jetsocket:member_removed"
	// EventSubscriptionCount carries {subscription_count} to a channel's subscribers
	// (SUBSCRIPTION_COUNT); Pusher clients get it as pusher_internal:subscription_count.
	EventSubscriptionCount = "jetsocket:subscription_count"
	// EventSkip carries {channel, epoch, offset} to the connection a positioned
	// publication was not delivered to (Message.SkipNotice, and a replay's excluded
	// publications): its client moves its position past it instead of seeing a gap.
	// socket.io connections only: it has no Pusher form.
	EventSkip = "jetsocket:skip"
)

// Conn is what the hub needs of a connection. socket.Conn has it; the hub does not
// import the socket server, only the wire format they share.
type Conn interface {
	ID() string
	UserID() string
	SendFrame(f wire.Frame) bool
	Close(reason string)
	// HubChannels is the connection's channels as the hub keeps them, carried by the
	// connection (a ConnChannels embedded in it): the same pointer for its whole life.
	HubChannels() *ConnChannels
}

// ConnChannels is one connection's channels, as the hub keeps them: a connection
// carries it (its zero value, embedded), so that what a connection is subscribed to is
// answered under the connection's own lock, and only the channel → connections maps
// are shared by every connection. The hub writes it under its own lock and then this
// one (that order, always); it must not be copied.
type ConnChannels struct {
	mu   sync.Mutex
	subs chanSubs
}

// sub is channel's subscription, if any.
func (cc *ConnChannels) sub(channel string) (subscription, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.subs.get(channel)
}

// UserChannel is the internal channel every connection of a user is on, so that
// #server-to-user-<id> triggers and terminations travel like any message. Channels
// whose names start with '#' are internal: clients cannot subscribe to them, and they
// are left out of listings, subscription counts and hooks.
func UserChannel(userID string) string { return "#server-to-user-" + userID }

// OnlineChannel is the internal presence channel whose members are userID's signed-in
// connections, on every node (a connection joins it as a presence member of userID).
// Its member_added and member_removed are the user coming online and going offline,
// which watchlists follow by subscribing to it.
func OnlineChannel(userID string) string { return onlinePrefix + userID }

const onlinePrefix = "#online-"

// OnlineUser returns the user whose online channel channel is.
func OnlineUser(channel string) (string, bool) { return strings.CutPrefix(channel, onlinePrefix) }

// Internal reports whether channel is an internal channel.
func Internal(channel string) bool { return strings.HasPrefix(channel, "#") }

// ReasonTerminated is the close reason of connections ended by Message.Terminate.
const ReasonTerminated = "terminated by the HTTP API"

// EventTerminated tells a connection ended by Message.Terminate why, just before it
// closes: {code: "terminated", reason}. A client that gets it should not reconnect
// (pusher-js stays off after Pusher's equivalent); the JS client does not.
const EventTerminated = "jetsocket:terminated"

// flushCloser is a Conn that can close once what it was sent is written (socket.Conn):
// a terminated connection then gets EventTerminated before the close.
type flushCloser interface{ CloseAfterFlush(reason string) }

// Message is one event for a channel's subscribers.
type Message struct {
	Channel string `json:"channel"`
	Event   string `json:"event"`
	// Data is the JSON value subscribers get as "data" in {channel, data[, user_id]}.
	Data json.RawMessage `json:"data,omitempty"`
	// UserID, set for client events, is delivered as "user_id".
	UserID string `json:"user_id,omitempty"`
	// Payload, when set, is delivered as the whole event payload instead (member events).
	Payload json.RawMessage `json:"payload,omitempty"`
	// ExceptSocketID is not delivered to (the sender).
	ExceptSocketID string `json:"except,omitempty"`
	// SkipNotice: the connection ExceptSocketID names gets an EventSkip with the
	// message's position instead, when it is subscribed and the message has one (an
	// API trigger's socket_id; a client event's sender learns it from its ack).
	SkipNotice bool `json:"skip_notice,omitempty"`
	// Terminate closes the channel's connections instead of sending them anything.
	Terminate bool `json:"terminate,omitempty"`
	// Offset and Epoch are the message's position in its channel's history, set by a
	// Broker that keeps history (Historian); Offset 0: none. Delivered as "offset" and
	// "epoch" beside "channel" and "data".
	Offset uint64 `json:"offset,omitempty"`
	Epoch  string `json:"epoch,omitempty"`
}

// Positioned reports whether m is a publication that history keeps and positions: an
// event on a channel clients subscribe to, not a member event or a termination.
func (m Message) Positioned() bool {
	return !m.Terminate && m.Payload == nil && !Internal(m.Channel)
}

// Broker carries messages to the hubs of every node.
type Broker interface {
	// Start registers the local delivery function; it is called once, before Publish.
	Start(deliver func(Message))
	// Publish delivers m on every node, this one included.
	Publish(ctx context.Context, m Message) error
	Close() error
}

// ChannelBroker is a Broker that carries a channel's messages only to the nodes with
// subscribers on it. The hub tells it of each subscription of a connection on this node
// as it begins and ends; the memory broker, with one node, has no need of it.
type ChannelBroker interface {
	// Subscribe is called before a subscription is acknowledged and returns once every
	// message published on channel after it reaches this node.
	Subscribe(ctx context.Context, channel string) error
	// Unsubscribe is called when a subscription ends.
	Unsubscribe(channel string)
}

// PositionBroker is a Broker that tells the publisher the position Publish gave m
// (zero when none); the hub's PublishAt uses it.
type PositionBroker interface {
	PublishAt(ctx context.Context, m Message) (history.Position, error)
}

// Historian is a Broker that keeps channels' history: its Publish gives each
// Positioned message on a channel with history an Offset and Epoch, and delivers the
// messages of a channel in offset order on every node. The hub reads the history
// through it (subscribes with since, the HTTP API).
type Historian interface {
	history.Reader
	// HistoryLimits is channel's history limits; Size 0: the channel keeps none.
	HistoryLimits(channel string) history.Limits
}

// Member is a presence channel member.
type Member struct {
	UserID string          `json:"user_id"`
	Info   json.RawMessage `json:"user_info"`
}

// ErrFull is returned by Presence.Join when the channel is at its member cap.
var ErrFull = errors.New("presence channel is full")

// Presence keeps presence channel members, one per user however many connections the
// user has.
type Presence interface {
	// Join records socketID as a connection of m.UserID on channel. first reports that
	// the user was not a member before. A new user on a channel with max members gets
	// ErrFull. m.Info replaces the member's info (a refreshed token may rename them).
	Join(ctx context.Context, channel, socketID string, m Member, max int) (first bool, err error)
	// Leave removes the connection; last reports that it was the user's last one.
	Leave(ctx context.Context, channel, socketID, userID string) (last bool, err error)
	// Members lists the channel's members, sorted by user id.
	Members(ctx context.Context, channel string) ([]Member, error)
}

// Counts keeps how many subscriptions each channel has across every node. Internal
// channels are never counted.
type Counts interface {
	// Add changes channel's count by delta and returns the new total; a total never
	// goes below 0, and a channel at 0 is not listed.
	Add(ctx context.Context, channel string, delta int) (int, error)
	// All lists the occupied channels whose names start with prefix, with their totals.
	All(ctx context.Context, prefix string) (map[string]int, error)
	// Get is channel's total.
	Get(ctx context.Context, channel string) (int, error)
}

// Hooks observe channel life (for webhooks and metrics). Each may be nil. They run on
// the caller's goroutine and must not block.
type Hooks struct {
	ChannelOccupied func(channel string)
	ChannelVacated  func(channel string)
	MemberAdded     func(channel, userID string)
	MemberRemoved   func(channel, userID string)
	// Delivered is told how many subscribers each delivered message was queued to.
	Delivered func(n int)
	// Counted is told a channel's new subscription count (every node's) after a
	// subscribe or unsubscribe on this node changed it.
	Counted func(channel string, total int)
}

// Hub is a node's channel subscriptions.
type Hub struct {
	broker   Broker
	presence Presence
	counts   Counts
	hooks    Hooks
	log      *slog.Logger
	history  Historian     // nil: the broker keeps no history
	chans    ChannelBroker // nil: every node gets every message
	// alt encodes a message for connections of another protocol (the Pusher
	// endpoint); set once at wiring, before any delivery.
	alt func(Message) []byte

	// sync is held for reading while a subscribe or unsubscribe changes the shared
	// entries and the hub's own, and for writing while Resync compares them.
	sync sync.RWMutex

	mu       sync.RWMutex
	channels map[string]channelSubs // channel → its subscribers here (each conn's own: Conn.HubChannels)
}

// subscription is one channel of a connection. A presence member is usually the
// connection's user, but a delegated authorization's channel_data may name another.
// The member is kept whole (a Resync writes it again) but behind a pointer, nil on
// other channels: every connection has a map of these (its ConnChannels), and a 48-byte
// value in it cost about 220 B per idle connection against this 8-byte one (bench, heap
// profiles).
type subscription struct {
	member *Member // nil unless a presence channel
}

func (s subscription) presence() bool { return s.member != nil }

// New returns a Hub using broker, presence and counts (NewMemoryBroker,
// NewMemoryPresence and NewMemoryCounts for a single node; nil counts is the latter).
func New(broker Broker, presence Presence, counts Counts, hooks Hooks, log *slog.Logger) *Hub {
	if counts == nil {
		counts = NewMemoryCounts()
	}
	h := &Hub{
		broker:   broker,
		presence: presence,
		counts:   counts,
		hooks:    hooks,
		log:      log,
		channels: make(map[string]channelSubs),
	}
	h.history, _ = broker.(Historian)
	h.chans, _ = broker.(ChannelBroker)
	broker.Start(h.deliver)
	return h
}

// SetAltEncoding makes every delivered frame carry m's form for connections of another
// protocol (wire.Frame.Alt), built by enc on first use and shared by those connections.
// It is called once while wiring, before any message is delivered.
func (h *Hub) SetAltEncoding(enc func(Message) []byte) { h.alt = enc }

// Subscribed reports whether c is subscribed to channel.
func (h *Hub) Subscribed(c Conn, channel string) bool {
	_, ok := c.HubChannels().sub(channel)
	return ok
}

// Subscriptions is how many channels c is subscribed to, internal ones aside.
func (h *Hub) Subscriptions(c Conn) int {
	cc := c.HubChannels()
	cc.mu.Lock()
	defer cc.mu.Unlock()
	n := 0
	for ch := range cc.subs.all() {
		if !Internal(ch) {
			n++
		}
	}
	return n
}

// Subscribe adds c to channel. For a presence channel, member is who c is there (its
// user, or the one a delegated authorization names) and max the member cap; the first
// connection of a user announces member_added to the others.
// Subscribing again is harmless. It returns the members of a presence channel.
func (h *Hub) Subscribe(ctx context.Context, c Conn, channel string, member *Member, max int) ([]Member, error) {
	if h.Subscribed(c, channel) {
		if member == nil {
			return nil, nil
		}
		return h.presence.Members(ctx, channel)
	}
	return h.subscribe(ctx, c, c, channel, member, max)
}

// subscribe adds c to channel, with as (c, or its replay buffer) the one the hub's
// deliveries go to.
func (h *Hub) subscribe(ctx context.Context, c, as Conn, channel string, member *Member, max int) ([]Member, error) {
	first, occupied, err := h.add(ctx, c, as, channel, member, max)
	if err != nil {
		return nil, err
	}

	if occupied && h.hooks.ChannelOccupied != nil {
		h.hooks.ChannelOccupied(channel)
	}
	if member == nil {
		return nil, nil
	}
	if first {
		h.memberAdded(ctx, channel, *member, c.ID())
	}
	return h.presence.Members(ctx, channel)
}

// add records c on channel in the shared entries and in the hub's own, both under
// h.sync so that a Resync never sees one done without the other. Deliveries go to as.
func (h *Hub) add(ctx context.Context, c, as Conn, channel string, member *Member, max int) (first, occupied bool, err error) {
	h.sync.RLock()
	defer h.sync.RUnlock()
	if member != nil {
		if first, err = h.presence.Join(ctx, channel, c.ID(), *member, max); err != nil {
			return false, false, err
		}
	}
	if h.chans != nil {
		// A broker that cannot subscribe now does once Redis answers; the
		// subscribe goes on, as with counts and presence writes.
		if err := h.chans.Subscribe(ctx, channel); err != nil {
			h.log.Warn("broker subscribe", "channel", channel, "err", err)
		}
	}
	h.mu.Lock()
	subs := h.channels[channel]
	subs.set(c.ID(), as)
	h.channels[channel] = subs
	sub := subscription{}
	if member != nil {
		m := *member
		sub = subscription{member: &m}
	}
	cc := c.HubChannels()
	cc.mu.Lock()
	cc.subs.set(channel, sub)
	cc.mu.Unlock()
	h.mu.Unlock()
	return first, h.count(ctx, channel, 1), nil
}

// UpdateMember replaces the info of the member c is on presence channel as (its user
// after a token refresh): new subscribers and the members queries see it. Those already
// subscribed are not told: Pusher's protocol has no event for it, and a member_added
// for a member they have would be read as a second one. Not subscribed, or not as
// m.UserID: nothing changes.
func (h *Hub) UpdateMember(ctx context.Context, c Conn, channel string, m Member) error {
	h.sync.RLock()
	defer h.sync.RUnlock()
	cc := c.HubChannels()
	cc.mu.Lock()
	sub, ok := cc.subs.get(channel)
	if !ok || !sub.presence() || sub.member.UserID != m.UserID || string(sub.member.Info) == string(m.Info) {
		cc.mu.Unlock()
		return nil
	}
	updated := m
	sub.member = &updated // Resync writes it again as it is now
	cc.subs.set(channel, sub)
	cc.mu.Unlock()
	if _, err := h.presence.Join(ctx, channel, c.ID(), m, 0); err != nil {
		return fmt.Errorf("update member %s on %s: %w", m.UserID, channel, err)
	}
	return nil
}

// memberAdded announces a presence channel's new member to its subscribers (all but
// except) and to the MemberAdded hook.
func (h *Hub) memberAdded(ctx context.Context, channel string, m Member, except string) {
	if h.hooks.MemberAdded != nil && !Internal(channel) {
		h.hooks.MemberAdded(channel, m.UserID)
	}
	payload, err := json.Marshal(struct {
		Channel  string          `json:"channel"`
		UserID   string          `json:"user_id"`
		UserInfo json.RawMessage `json:"user_info"`
	}{channel, m.UserID, nullIfEmpty(m.Info)})
	if err != nil {
		h.log.Error("encode member_added", "channel", channel, "err", err)
		return
	}
	if err := h.Publish(ctx, Message{Channel: channel, Event: EventMemberAdded, Payload: payload, ExceptSocketID: except}); err != nil {
		h.log.Error("publish member_added", "channel", channel, "err", err)
	}
}

// Unsubscribe removes c from channel; a user's last connection leaving a presence
// channel announces member_removed. Unsubscribing from a channel c is not on is harmless.
// A shared entry that cannot be removed now (Redis is down) is left to the next Resync.
func (h *Hub) Unsubscribe(ctx context.Context, c Conn, channel string) {
	sub, last, vacated, ok := h.remove(ctx, c, channel)
	if !ok {
		return
	}

	if last {
		h.MemberGone(ctx, channel, sub.member.UserID)
	}
	if vacated && h.hooks.ChannelVacated != nil {
		h.hooks.ChannelVacated(channel)
	}
}

// remove is Unsubscribe's part under h.sync, as add is Subscribe's.
func (h *Hub) remove(ctx context.Context, c Conn, channel string) (sub subscription, last, vacated, ok bool) {
	h.sync.RLock()
	defer h.sync.RUnlock()
	h.mu.Lock()
	cc := c.HubChannels()
	cc.mu.Lock()
	sub, ok = cc.subs.del(channel)
	cc.mu.Unlock()
	if !ok {
		h.mu.Unlock()
		return sub, false, false, false
	}
	subs := h.channels[channel]
	subs.del(c.ID())
	if subs.len() == 0 {
		delete(h.channels, channel)
	} else {
		h.channels[channel] = subs
	}
	h.mu.Unlock()
	if h.chans != nil {
		h.chans.Unsubscribe(channel)
	}

	if sub.presence() {
		var err error
		last, err = h.presence.Leave(ctx, channel, c.ID(), sub.member.UserID)
		if err != nil {
			h.log.Error("presence leave", "channel", channel, "socket_id", c.ID(), "err", err)
		}
	}
	return sub, last, h.count(ctx, channel, -1), true
}

// ChannelsOf lists the channels c is subscribed to, sorted.
func (h *Hub) ChannelsOf(c Conn) []string {
	cc := c.HubChannels()
	cc.mu.Lock()
	chans := make([]string, 0, cc.subs.len())
	for ch := range cc.subs.all() {
		chans = append(chans, ch)
	}
	cc.mu.Unlock()
	slices.Sort(chans)
	return chans
}

// Publish sends m to the channel's subscribers on every node.
func (h *Hub) Publish(ctx context.Context, m Message) error {
	return h.broker.Publish(ctx, m)
}

// PublishAt is Publish that returns the position m was given in its channel's history
// (zero when none: the channel keeps none, or the broker cannot tell).
func (h *Hub) PublishAt(ctx context.Context, m Message) (history.Position, error) {
	if pb, ok := h.broker.(PositionBroker); ok {
		return pb.PublishAt(ctx, m)
	}
	return history.Position{}, h.broker.Publish(ctx, m)
}

// Members lists a presence channel's members.
func (h *Hub) Members(ctx context.Context, channel string) ([]Member, error) {
	return h.presence.Members(ctx, channel)
}

// count records a subscription (delta 1) or its end (-1) of a channel and reports
// whether that occupied or vacated it across every node. Internal channels are never
// counted or reported.
func (h *Hub) count(ctx context.Context, channel string, delta int) bool {
	if Internal(channel) {
		return false
	}
	total, err := h.counts.Add(ctx, channel, delta)
	if err != nil {
		h.log.Error("channel count", "channel", channel, "err", err)
		return false
	}
	if h.hooks.Counted != nil {
		h.hooks.Counted(channel, total)
	}
	return (delta > 0 && total == delta) || (delta < 0 && total == 0)
}

// Subscribers is the number of connections subscribed to channel, on every node.
func (h *Hub) Subscribers(ctx context.Context, channel string) (int, error) {
	if !Internal(channel) {
		return h.counts.Get(ctx, channel)
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	subs := h.channels[channel]
	return subs.len(), nil
}

// Channels lists the occupied channels (on every node) whose names start with prefix,
// with their subscription counts. Internal channels are left out.
func (h *Hub) Channels(ctx context.Context, prefix string) (map[string]int, error) {
	return h.counts.All(ctx, prefix)
}

// MemberGone announces that userID left a presence channel: member_removed to the
// subscribers and the MemberRemoved hook. A leave calls it, and so do the cluster's
// reaping of a dead node and a resync that removes a leave Redis missed.
func (h *Hub) MemberGone(ctx context.Context, channel, userID string) {
	if h.hooks.MemberRemoved != nil && !Internal(channel) {
		h.hooks.MemberRemoved(channel, userID)
	}
	payload, _ := json.Marshal(map[string]string{"channel": channel, "user_id": userID})
	if err := h.Publish(ctx, Message{Channel: channel, Event: EventMemberRemoved, Payload: payload}); err != nil {
		h.log.Error("publish member_removed", "channel", channel, "err", err)
	}
}

// ChannelGone reports a channel vacated by a dead node's reaping or by a resync.
func (h *Hub) ChannelGone(channel string) {
	if h.hooks.ChannelVacated != nil && !Internal(channel) {
		h.hooks.ChannelVacated(channel)
	}
}

// MemberBack announces that a user is a presence channel's member again after a Resync
// put back what a reaping had removed: member_added to every subscriber and the
// MemberAdded hook.
func (h *Hub) MemberBack(ctx context.Context, channel string, m Member) {
	h.memberAdded(ctx, channel, m, "")
}

// ChannelBack reports a channel occupied again by a Resync.
func (h *Hub) ChannelBack(channel string) {
	if h.hooks.ChannelOccupied != nil && !Internal(channel) {
		h.hooks.ChannelOccupied(channel)
	}
}

// Entry is a presence connection of this node.
type Entry struct {
	Channel  string
	SocketID string
	Member   Member
}

// State is what this node's connections hold: the truth its shared entries are
// rewritten from when they may have drifted (a write lost while Redis was down, the
// node reaped while alive, a Redis that restarted empty).
type State struct {
	Presence []Entry
	Counts   map[string]int // channel → this node's subscriptions; internal ones aside
}

// Changes is what rewriting a node's shared entries changed across every node.
type Changes struct {
	Occupied []string
	Left     []Entry // a user's last connection gone: member_removed
	Joined   []Entry // a user back after a wrongful reaping: member_added
	Vacated  []string
}

// Resync rewrites this node's shared entries from its connections with write (the
// cluster's), holding subscribes and unsubscribes off meanwhile so that write sees
// them and the shared entries agree, and then announces what that changed, in the
// order a subscribe and an unsubscribe announce it.
func (h *Hub) Resync(ctx context.Context, write func(context.Context, State) (Changes, error)) error {
	h.sync.Lock()
	c, err := write(ctx, h.state())
	h.sync.Unlock()
	if err != nil {
		return err
	}
	for _, ch := range c.Occupied {
		h.ChannelBack(ch)
	}
	for _, e := range c.Left {
		h.MemberGone(ctx, e.Channel, e.Member.UserID)
	}
	for _, e := range c.Joined {
		h.MemberBack(ctx, e.Channel, e.Member)
	}
	for _, ch := range c.Vacated {
		h.ChannelGone(ch)
	}
	return nil
}

// state snapshots this node's subscriptions.
func (h *Hub) state() State {
	h.mu.RLock()
	defer h.mu.RUnlock()
	st := State{Counts: make(map[string]int)}
	for ch, subs := range h.channels {
		subs.each(func(id string, c Conn) {
			sub, ok := c.HubChannels().sub(ch)
			if !ok {
				return // not under h.mu: cannot be, add and remove change both under it
			}
			// Internal presence (the online channels) is shared state too; internal
			// channels are never counted.
			if sub.presence() {
				st.Presence = append(st.Presence, Entry{Channel: ch, SocketID: id, Member: *sub.member})
			}
			if !Internal(ch) {
				st.Counts[ch]++
			}
		})
	}
	return st
}

// deliver hands m to this node's subscribers, encoding it once for all of them.
func (h *Hub) deliver(m Message) {
	if m.Terminate {
		packet, err := wire.EncodeEvent(EventTerminated, map[string]string{"code": "terminated", "reason": ReasonTerminated})
		if err != nil {
			h.log.Error("encode message", "event", EventTerminated, "err", err)
		}
		frame := wire.NewFrame(packet)
		targets, _ := h.targets(m)
		for _, c := range targets {
			if err == nil {
				c.SendFrame(frame)
			}
			if fc, ok := c.(flushCloser); ok {
				fc.CloseAfterFlush(ReasonTerminated)
			} else {
				c.Close(ReasonTerminated)
			}
		}
		return
	}
	f, err := h.encode(m)
	if err != nil {
		h.log.Error("encode message", "channel", m.Channel, "event", m.Event, "err", err)
		return
	}
	// Sent outside the lock: SendFrame never blocks, but closing a slow consumer
	// should not hold up subscribes either.
	targets, excluded := h.targets(m)
	sendAll(targets, f, m.Offset, m.Epoch)
	if excluded != nil && m.SkipNotice && m.Offset != 0 {
		h.sendSkip(excluded, m.Channel, m.Epoch, m.Offset)
	}
	if h.hooks.Delivered != nil {
		h.hooks.Delivered(len(targets))
	}
}

// skipFrame is the EventSkip frame for the publication at offset: positioned, so that
// a connection logging what it is sent (socket.io 4.x recovery) counts it as got, and
// without a Pusher form.
func skipFrame(channel, epoch string, offset uint64) (wire.Frame, error) {
	packet, err := wire.EncodeEvent(EventSkip, struct {
		Channel string `json:"channel"`
		Epoch   string `json:"epoch"`
		Offset  uint64 `json:"offset"`
	}{channel, epoch, offset})
	if err != nil {
		return wire.Frame{}, err
	}
	return wire.NewFrame(packet).WithPub(channel, epoch, offset), nil
}

// sendSkip tells c it was not sent the publication at offset (see EventSkip).
func (h *Hub) sendSkip(c Conn, channel, epoch string, offset uint64) {
	f, err := skipFrame(channel, epoch, offset)
	if err != nil {
		h.log.Error("encode message", "event", EventSkip, "err", err)
		return
	}
	sendOne(c, f, offset, epoch)
}

// encode builds the frame of m: its Payload, or {channel, data[, user_id][, offset,
// epoch]}, with its form for the other protocol's connections when there are any.
func (h *Hub) encode(m Message) (wire.Frame, error) {
	payload := m.Payload
	if payload == nil {
		var err error
		payload, err = json.Marshal(struct {
			Channel string          `json:"channel"`
			Data    json.RawMessage `json:"data"`
			UserID  string          `json:"user_id,omitempty"`
			Offset  uint64          `json:"offset,omitempty"`
			Epoch   string          `json:"epoch,omitempty"`
		}{m.Channel, nullIfEmpty(m.Data), m.UserID, m.Offset, m.Epoch})
		if err != nil {
			return wire.Frame{}, err
		}
	}
	event := m.Event
	if events, ok := OnlineChange(m); ok {
		// A watched user's online channel: watchers get it as a watchlist event.
		event = EventWatchlist
		var err error
		if payload, err = json.Marshal(map[string]any{"events": events}); err != nil {
			return wire.Frame{}, err
		}
	}
	packet, err := wire.EncodeEvent(event, json.RawMessage(payload))
	if err != nil {
		return wire.Frame{}, err
	}
	f := wire.NewFrame(packet)
	if m.Offset != 0 {
		// Its position, for the connections that keep track of what they were sent
		// (socket.io 4.x connection state recovery).
		f = f.WithPub(m.Channel, m.Epoch, m.Offset)
	}
	if h.alt != nil {
		am := &altMessage{m: m, enc: h.alt}
		am.alt.SetSource(am)
		f = f.WithAlt(&am.alt)
	}
	return f, nil
}

// altMessage is a message with its lazily built form for the other protocol's
// connections, in one allocation.
type altMessage struct {
	alt wire.Alt
	m   Message
	enc func(Message) []byte
}

func (a *altMessage) AltForm() []byte { return a.enc(a.m) }

// fanOutShard is the fewest subscribers worth a goroutine of their own in sendAll.
const fanOutShard = 256

// sendAll hands f to every target. A send is mostly one write syscall (socket.Conn
// writes a free websocket at once), so a large channel is split across up to
// GOMAXPROCS goroutines: the last subscriber of 10,000 waits for half as many writes
// on two cores.
// A subscriber whose recovery is under way (*replaying) gets f with its position, to
// keep until the replay is sent.
func sendAll(targets []Conn, f wire.Frame, offset uint64, epoch string) {
	send := func(part []Conn) {
		for _, c := range part {
			sendOne(c, f, offset, epoch)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(targets)/fanOutShard)
	if workers <= 1 {
		send(targets)
		return
	}
	per := (len(targets) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := per; lo < len(targets); lo += per {
		part := targets[lo:min(lo+per, len(targets))]
		wg.Go(func() { send(part) })
	}
	send(targets[:per])
	wg.Wait()
}

// sendOne hands f to c, with its position to a subscriber whose recovery is under way.
func sendOne(c Conn, f wire.Frame, offset uint64, epoch string) {
	if r, ok := c.(*replaying); ok {
		r.send(f, offset, epoch)
		return
	}
	c.SendFrame(f)
}

// targets snapshots the subscribers m goes to, and the one it excludes if subscribed.
func (h *Hub) targets(m Message) (out []Conn, excluded Conn) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	subs := h.channels[m.Channel]
	out = make([]Conn, 0, subs.len())
	// A user's online channel tells its watchers, not its members (the user's own
	// connections, which are on it only to be counted online).
	online := strings.HasPrefix(m.Channel, onlinePrefix)
	subs.each(func(id string, c Conn) {
		if online {
			if sub, _ := c.HubChannels().sub(m.Channel); sub.presence() {
				return
			}
		}
		if id != m.ExceptSocketID {
			out = append(out, c)
		} else {
			excluded = c
		}
	})
	return out, excluded
}

func nullIfEmpty(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}
