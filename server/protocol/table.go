package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"

	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/tokens"
)

// Request is one event from a client as its handler sees it.
type Request[T any] struct {
	// Ctx is cancelled when the connection closes and has a deadline (RequestTimeout);
	// tokens.FromContext(Ctx) gives the claims.
	Ctx      context.Context
	Event    string
	SocketID string
	UserID   string
	Claims   *tokens.Claims
	// Payload is the event's first argument, decoded: a JSON object into a struct or
	// map, any JSON value into json.RawMessage.
	Payload T
	// Trigger publishes from Go, as the HTTP API does; Channels answers the channel and
	// presence queries.
	Trigger  Trigger
	Channels Queries

	conn Conn
}

// Emit sends event to this connection only.
func (r Request[T]) Emit(event string, payload any) bool { return r.conn.Emit(event, payload) }

// HandlerFunc handles one event: it returns the ack's value, or an error, which the
// client gets as {ok:false, status, code, error} (an *errs.Error as it is, any other as
// internal_error, logged).
type HandlerFunc[T any] func(r Request[T]) (any, error)

// Event is a socket event and its handler, for the table. Build one with On.
type Event struct {
	name   string
	prefix bool   // name is a prefix (client events)
	kind   string // the metrics label
	handle func(ctx context.Context, s *Service, c Conn, event string, args []json.RawMessage) (ack any, channel *string, err error)
	// refused, if set, is told each refusal after it is mapped (built-ins that also
	// emit the outcome as an event).
	refused func(s *Service, c Conn, r Refusal)
}

// Name is the event's name.
func (e Event) Name() string { return e.name }

// On makes the Event name handled by h; its payload is decoded into T. Refused
// payloads are answered 400 invalid_payload without calling h.
func On[T any](name string, h HandlerFunc[T]) Event {
	return Event{name: name, kind: "custom", handle: func(ctx context.Context, s *Service, c Conn, event string, args []json.RawMessage) (any, *string, error) {
		r := Request[T]{Ctx: ctx, Event: event, SocketID: c.ID(), UserID: c.UserID(), Claims: c.Claims(), Trigger: s.triggers, Channels: s.hub, conn: c}
		err := decode(args, &r.Payload)
		channel := channelOf(&r.Payload)
		if err != nil {
			return nil, channel, err
		}
		ack, err := safely(func() (any, error) { return h(r) })
		return ack, channel, err
	}}
}

// panicked is a handler's panic (its own, or a guard's or hook's it called) as an
// error: internal, so the client gets a 500 refusal and the log gets the value and stack.
type panicked struct {
	value  any
	stack  []byte
	logged bool // by the hook's caller, which knew the channel
}

func (p *panicked) Error() string { return fmt.Sprintf("panic: %v", p.value) }

// safely runs f, turning a panic in it into a *panicked error.
func safely[T any](f func() (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicked{value: r, stack: debug.Stack()}
		}
	}()
	return f()
}

// safeHook runs a developer's hook; a panic in it is logged with its stack and returned
// as a *panicked error.
func (s *Service) safeHook(what, channel string, c Conn, f func() error) error {
	_, err := safely(func() (struct{}, error) { return struct{}{}, f() })
	var p *panicked
	if errors.As(err, &p) {
		s.logPanic(what, c, p, "channel", channel)
		p.logged = true
	}
	return err
}

func (s *Service) logPanic(what string, c Conn, p *panicked, fields ...any) {
	s.log.Error(what+" panicked", append([]any{"socket_id", c.ID(), "user_id", c.UserID(), "panic", fmt.Sprint(p.value), "stack", string(p.stack)}, fields...)...)
}

// channelNamer is a payload that names a channel: its refusals carry the channel.
type channelNamer interface{ channelName() string }

func channelOf(p any) *string {
	if n, ok := p.(channelNamer); ok {
		s := n.channelName()
		return &s
	}
	return nil
}

var rawType = reflect.TypeFor[json.RawMessage]()

// decode decodes the first argument into v: any JSON value when v is a
// *json.RawMessage, else a JSON object.
func decode(args []json.RawMessage, v any) error {
	if reflect.TypeOf(v).Elem() == rawType {
		if len(args) > 0 {
			*v.(*json.RawMessage) = args[0]
		}
		return nil
	}
	if len(args) == 0 || len(args[0]) == 0 || args[0][0] != '{' {
		return errs.New(errs.Invalid, CodeInvalidPayload, "the payload must be a JSON object")
	}
	if err := json.Unmarshal(args[0], v); err != nil {
		return errs.New(errs.Invalid, CodeInvalidPayload, "the payload has a field of the wrong type")
	}
	return nil
}

// Refusal is the ack of every refused event. Channel is there for events about a
// channel (subscribe, unsubscribe, client events).
type Refusal struct {
	OK      bool    `json:"ok"`
	Channel *string `json:"channel,omitempty"`
	Status  int     `json:"status"`
	Code    string  `json:"code"`
	Error   string  `json:"error"`
}

func refusal(e *errs.Error, channel *string) Refusal {
	return Refusal{Channel: channel, Status: e.Kind.Status(), Code: e.Code, Error: e.Message}
}

// table is the one registration table: built-in events and a developer's alike.
type table struct {
	exact    map[string]Event
	prefixes []Event
}

func (t *table) add(e Event) error {
	if e.name == "" || e.handle == nil {
		return errors.New("socket event: use protocol.On to make one, with a name")
	}
	if e.prefix {
		t.prefixes = append(t.prefixes, e)
		return nil
	}
	if _, dup := t.exact[e.name]; dup {
		return fmt.Errorf("socket event %q is registered twice", e.name)
	}
	t.exact[e.name] = e
	return nil
}

// addCustom adds a developer's event, which may not take a built-in's name space.
func (t *table) addCustom(e Event) error {
	if strings.HasPrefix(e.name, ReservedPrefix) || strings.HasPrefix(e.name, ClientEventPrefix) {
		return fmt.Errorf("socket event %q: names starting with %q or %q are the server's", e.name, ReservedPrefix, ClientEventPrefix)
	}
	return t.add(e)
}

func (t *table) lookup(name string) (Event, bool) {
	if e, ok := t.exact[name]; ok {
		return e, true
	}
	for _, e := range t.prefixes {
		if strings.HasPrefix(name, e.name) {
			return e, true
		}
	}
	return Event{}, false
}

// Dispatch handles one event from c (socket.Options.Handler): it finds the event in
// the table, counts it, decodes its payload, runs its handler with the connection's
// context, and maps and logs a refusal. The result is the ack.
//
// The event runs under c's state (connstate.State.Enter): an event of a connection that
// has not connected, or that Disconnect has ended, is refused with CodeConnectionClosed
// and nothing of it is made again; Disconnect waits for the events in flight.
func (s *Service) Dispatch(c Conn, event string, args []json.RawMessage) any {
	st := c.ConnState()
	if !st.Enter() {
		e := errs.New(errs.Unavailable, CodeConnectionClosed, "the connection has ended")
		s.log.Debug("socket event refused", "event", truncate(event, 64), "socket_id", c.ID(), "code", e.Code)
		return refusal(e, nil)
	}
	defer st.Exit()
	ev, ok := s.table.lookup(event)
	if !ok {
		e := errs.New(errs.NotFound, CodeUnknownEvent, fmt.Sprintf("unknown event %q", truncate(event, 64)))
		c.Error(e.Code, e.Message)
		return refusal(e, nil)
	}
	s.metrics.MessagesIn.WithLabelValues(ev.kind).Inc()
	// The timeout straight on the connection's context, the claims above it: a parent
	// with values in between would hide the connection context's AfterFunc.
	ctx, cancel := withTimeout(c.Context(), RequestTimeout)
	defer cancel()
	ctx = tokens.WithClaims(ctx, c.Claims())
	ack, channel, err := ev.handle(ctx, s, c, event, args)
	if err == nil {
		return ack
	}
	e := errs.From(err)
	var p *panicked
	switch {
	case errors.As(err, &p):
		if !p.logged {
			s.logPanic("socket event handler", c, p, "event", truncate(event, 64))
		}
	case e.Kind == errs.Internal:
		s.log.Error("socket event failed", "event", truncate(event, 64), "socket_id", c.ID(), "user_id", c.UserID(), "err", err)
	default:
		s.log.Debug("socket event refused", "event", truncate(event, 64), "socket_id", c.ID(), "user_id", c.UserID(), "code", e.Code)
	}
	r := refusal(e, channel)
	if ev.refused != nil {
		ev.refused(s, c, r)
	}
	return r
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
