// Package trigger publishes events to channels: the Pusher-compatible HTTP API and the
// Go API that extensions (custom events, channel hooks, custom routes) call in-process.
package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/encryption"
	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/hub"
)

// Limits of one trigger, as Pusher's.
const (
	MaxChannels   = 100
	MaxBatch      = 10
	MaxEventName  = 200
	reservedEvent = "jetsocket:"
)

var userChannel = hub.UserChannel("")

var socketIDPattern = regexp.MustCompile(`^\d+\.\d+$`)

// Publisher is what the service needs of the hub.
type Publisher interface {
	Publish(ctx context.Context, m hub.Message) error
}

// Service validates and publishes triggers.
type Service struct {
	pub        Publisher
	masterKey  []byte // nil: encrypted channels are not configured
	maxPayload int
}

// New returns a Service.
func New(pub Publisher, masterKey []byte, maxPayload int) *Service {
	return &Service{pub: pub, masterKey: masterKey, maxPayload: maxPayload}
}

// Event is one trigger as the HTTP API takes it: Data is the event data as a string.
type Event struct {
	Name     string          `json:"name"`
	Data     json.RawMessage `json:"data"`
	Channel  string          `json:"channel,omitempty"`
	Channels []string        `json:"channels,omitempty"`
	SocketID string          `json:"socket_id,omitempty"`
}

func invalid(format string, args ...any) *errs.Error {
	return errs.New(errs.Invalid, errs.CodeInvalidRequest, fmt.Sprintf(format, args...))
}

// target is a validated channel of a trigger.
type target struct {
	name      string
	encrypted bool
}

// Validate checks ev and returns the data to deliver (the parsed JSON when the data
// string is JSON, else the string) and the channels.
func (s *Service) Validate(ev Event) (json.RawMessage, []target, error) {
	if ev.Name == "" {
		return nil, nil, invalid("name is required")
	}
	if len(ev.Name) > MaxEventName {
		return nil, nil, invalid("name is longer than %d characters", MaxEventName)
	}
	if strings.HasPrefix(ev.Name, reservedEvent) {
		return nil, nil, invalid("event names starting with %q are reserved", reservedEvent)
	}
	var data string
	if len(ev.Data) == 0 || string(ev.Data) == "null" || json.Unmarshal(ev.Data, &data) != nil {
		return nil, nil, invalid("data is required and must be a string (JSON-encode objects, as Pusher's SDKs do)")
	}
	if len(data) > s.maxPayload {
		return nil, nil, errs.New(errs.TooLarge, errs.CodePayloadTooLarge, fmt.Sprintf("data is %d bytes; the limit is %d", len(data), s.maxPayload))
	}
	names := ev.Channels
	switch {
	case ev.Channel != "" && len(ev.Channels) > 0:
		return nil, nil, invalid("give channel or channels, not both")
	case ev.Channel != "":
		names = []string{ev.Channel}
	case len(names) == 0:
		return nil, nil, invalid("channel or channels is required")
	case len(names) > MaxChannels:
		return nil, nil, invalid("at most %d channels per event", MaxChannels)
	}
	if ev.SocketID != "" && !socketIDPattern.MatchString(ev.SocketID) {
		return nil, nil, invalid("socket_id must look like 1234.5678")
	}
	targets := make([]target, 0, len(names))
	for _, n := range names {
		if id, ok := strings.CutPrefix(n, userChannel); ok {
			if id == "" || len(id) > channels.MaxNameLength {
				return nil, nil, invalid("%s needs a user id", userChannel)
			}
			targets = append(targets, target{name: n})
			continue
		}
		ch, err := channels.Parse(n)
		if err != nil {
			return nil, nil, err
		}
		targets = append(targets, target{name: n, encrypted: ch.Kind == channels.PrivateEncrypted})
	}
	for _, t := range targets {
		if !t.encrypted {
			continue
		}
		if len(targets) > 1 {
			return nil, nil, invalid("an encrypted channel must be triggered on its own: its ciphertext is for one channel")
		}
		if !encryption.WellFormed([]byte(data)) {
			return nil, nil, invalid("data for an encrypted channel must be {nonce, ciphertext}, encrypted by the SDK")
		}
	}
	if json.Valid([]byte(data)) {
		return json.RawMessage(data), targets, nil
	}
	quoted, _ := json.Marshal(data)
	return quoted, targets, nil
}

// Publish validates and publishes an HTTP API event.
func (s *Service) Publish(ctx context.Context, ev Event) error {
	data, targets, err := s.Validate(ev)
	if err != nil {
		return err
	}
	return s.publish(ctx, ev.Name, data, targets, ev.SocketID)
}

// PublishBatch validates every event first, then publishes them in order: a bad event
// fails the whole batch before anything is sent.
func (s *Service) PublishBatch(ctx context.Context, batch []Event) error {
	if len(batch) == 0 {
		return invalid("batch is empty")
	}
	if len(batch) > MaxBatch {
		return invalid("at most %d events per batch", MaxBatch)
	}
	type valid struct {
		data    json.RawMessage
		targets []target
	}
	vs := make([]valid, len(batch))
	for i, ev := range batch {
		data, targets, err := s.Validate(ev)
		if err != nil {
			var e *errs.Error
			if errors.As(err, &e) {
				return &errs.Error{Kind: e.Kind, Code: e.Code, Message: fmt.Sprintf("batch[%d]: %s", i, e.Message)}
			}
			return err
		}
		vs[i] = valid{data, targets}
	}
	for i, ev := range batch {
		if err := s.publish(ctx, ev.Name, vs[i].data, vs[i].targets, ev.SocketID); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) publish(ctx context.Context, name string, data json.RawMessage, targets []target, except string) error {
	for _, t := range targets {
		if err := s.pub.Publish(ctx, hub.Message{Channel: t.name, Event: name, Data: data, ExceptSocketID: except, SkipNotice: except != ""}); err != nil {
			return fmt.Errorf("publish to %s: %w", t.name, err)
		}
	}
	return nil
}

// Trigger publishes event with data (any JSON-encodable value) to channels from Go code,
// excluding exceptSocketID when not empty. On a private-encrypted- channel the server
// encrypts data itself, as an SDK would.
func (s *Service) Trigger(ctx context.Context, chans []string, event string, data any, exceptSocketID string) error {
	plain, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("trigger %s: encode data: %w", event, err)
	}
	for _, name := range chans {
		payload := plain
		if strings.HasPrefix(name, channels.PrefixPrivateEncrypted) {
			if s.masterKey == nil {
				return fmt.Errorf("trigger on %s: ENCRYPTION_MASTER_KEY is not set", name)
			}
			p, err := encryption.Encrypt(name, s.masterKey, plain)
			if err != nil {
				return fmt.Errorf("trigger on %s: %w", name, err)
			}
			payload, _ = json.Marshal(p)
		}
		str, _ := json.Marshal(string(payload))
		if err := s.Publish(ctx, Event{Name: event, Data: str, Channel: name, SocketID: exceptSocketID}); err != nil {
			return err
		}
	}
	return nil
}

// TriggerToUser sends event to every connection of userID.
func (s *Service) TriggerToUser(ctx context.Context, userID, event string, data any) error {
	return s.Trigger(ctx, []string{hub.UserChannel(userID)}, event, data, "")
}

// Terminate closes every connection of userID.
func (s *Service) Terminate(ctx context.Context, userID string) error {
	if userID == "" {
		return invalid("user id is required")
	}
	return s.pub.Publish(ctx, hub.Message{Channel: hub.UserChannel(userID), Terminate: true})
}
