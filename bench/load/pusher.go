package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/gorilla/websocket"
)

// The Pusher Channels protocol 7 over Jetsocket's /app/{key} endpoint, as pusher-js
// speaks it: the server opens with pusher:connection_established, the client subscribes
// to a public channel with pusher:subscribe (no token: public channels are open) and
// the server confirms with pusher_internal:subscription_succeeded; the server's
// pusher:ping is answered with pusher:pong. Triggers arrive as
// {"event":..,"channel":..,"data":"<JSON as a string>"}, so the timing fields are
// escaped inside the data string.

// ProtocolPusher is the Handshake.Protocol of pusher-js clients.
const ProtocolPusher = "pusher"

// Pusher frames the client reads or writes.
const (
	pusherEstablished = "pusher:connection_established"
	pusherPing        = "pusher:ping"
	pusherError       = "pusher:error"
	pusherSubscribed  = "pusher_internal:subscription_succeeded"
	pusherSubError    = "pusher:subscription_error"
)

var pusherPongFrame = []byte(`{"event":"pusher:pong","data":{}}`)

// pusherURL is base's Pusher endpoint for app key, with the query pusher-js 8 sends.
func pusherURL(base *url.URL, key string) string {
	u := *base
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path = "/app/" + url.PathEscape(key)
	u.RawQuery = "protocol=7&client=js&version=8.6.0&flash=false"
	return u.String()
}

// pusherFrame is the envelope of every Pusher message.
type pusherFrame struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// connectPusher dials and reads until pusher:connection_established.
func connectPusher(ctx context.Context, d *websocket.Dialer, base *url.URL, key string) (*client, error) {
	ws, resp, err := d.DialContext(ctx, pusherURL(base, key), nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: %w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	c := &client{ws: ws, pusher: true, acks: make(map[int]chan json.RawMessage), readDone: make(chan struct{})}
	deadline := time.Now().Add(15 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = ws.SetReadDeadline(deadline)
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			ws.Close()
			return nil, fmt.Errorf("handshake: %w", err)
		}
		var f pusherFrame
		if err := json.Unmarshal(msg, &f); err != nil {
			ws.Close()
			return nil, fmt.Errorf("handshake: frame %q: %w", msg, err)
		}
		switch f.Event {
		case pusherEstablished:
			_ = ws.SetReadDeadline(time.Time{})
			return c, nil
		case pusherError:
			ws.Close()
			return nil, fmt.Errorf("handshake: refused: %s", f.Data)
		case pusherPing:
			if err := ws.WriteMessage(websocket.TextMessage, pusherPongFrame); err != nil {
				ws.Close()
				return nil, fmt.Errorf("handshake: pong: %w", err)
			}
		}
	}
}

// subscribePusher sends pusher:subscribe and waits for the channel's
// subscription_succeeded (or subscription_error), which the read loop hands over
// through the ack slot 0: a Pusher connection subscribes once.
func (c *client) subscribePusher(ctx context.Context, channel string) error {
	ch := make(chan json.RawMessage, 1)
	c.amu.Lock()
	c.acks[0] = ch
	c.amu.Unlock()
	msg, _ := json.Marshal(map[string]any{"event": "pusher:subscribe", "data": map[string]string{"channel": channel}})
	c.wmu.Lock()
	err := c.ws.WriteMessage(websocket.TextMessage, msg)
	c.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	select {
	case reply := <-ch:
		var f pusherFrame
		if err := json.Unmarshal(reply, &f); err != nil {
			return fmt.Errorf("subscribe: reply %q: %w", reply, err)
		}
		if f.Event != pusherSubscribed || f.Channel != channel {
			return fmt.Errorf("subscribe refused: %s", reply)
		}
		return nil
	case <-c.readDone:
		return errors.New("subscribe: connection closed")
	case <-ctx.Done():
		return fmt.Errorf("subscribe: no reply: %w", ctx.Err())
	}
}

// pusherMessage handles one frame read by readLoop: pongs to pings, the subscribe's
// answer to its waiter, timing events to onEvent. The timing event is read with a scan
// (as socket.io's is), its data being the string {\"t\":<nanos>,\"seq\":<n>}.
func (c *client) pusherMessage(msg []byte, recv int64) error {
	if c.onEvent != nil && bytes.HasPrefix(msg, c.pusherEventPrefix()) {
		if seq, sent, ok := scanPusherTimes(msg); ok {
			c.onEvent(seq, sent, recv)
			return nil
		}
	}
	var f pusherFrame
	if json.Unmarshal(msg, &f) != nil {
		return nil // not ours to judge; the server's tests do
	}
	switch f.Event {
	case pusherPing:
		c.wmu.Lock()
		defer c.wmu.Unlock()
		_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
		return c.ws.WriteMessage(websocket.TextMessage, pusherPongFrame)
	case pusherSubscribed, pusherSubError:
		c.amu.Lock()
		ch := c.acks[0]
		delete(c.acks, 0)
		c.amu.Unlock()
		if ch != nil {
			ch <- append(json.RawMessage(nil), msg...)
		}
	case c.event:
		// Not in the scanned form (a server that orders or spaces fields otherwise).
		var s string
		if json.Unmarshal(f.Data, &s) != nil {
			return nil
		}
		var p struct {
			T   int64 `json:"t"`
			Seq int   `json:"seq"`
		}
		if c.onEvent != nil && json.Unmarshal([]byte(s), &p) == nil {
			c.onEvent(p.Seq, p.T, recv)
		}
	}
	return nil
}

// pusherEventPrefix is how a timing event's frame starts: {"event":"<event>",
func (c *client) pusherEventPrefix() []byte {
	if c.eventPrefix == nil {
		c.eventPrefix = []byte(`{"event":"` + c.event + `",`)
	}
	return c.eventPrefix
}

// scanPusherTimes reads the send time and sequence number of a timing event whose data
// is the JSON string "{\"t\":<nanos>,\"seq\":<n>}".
func scanPusherTimes(b []byte) (seq int, sent int64, ok bool) {
	const tKey, seqKey = `"data":"{\"t\":`, `,\"seq\":`
	i := bytes.Index(b, []byte(tKey))
	if i < 0 {
		return 0, 0, false
	}
	t, rest, ok := scanInt(b[i+len(tKey):])
	if !ok || !bytes.HasPrefix(rest, []byte(seqKey)) {
		return 0, 0, false
	}
	s, rest, ok := scanInt(rest[len(seqKey):])
	if !ok || len(rest) == 0 || rest[0] != '}' {
		return 0, 0, false
	}
	return int(s), t, true
}
