// Package load drives a socket.io server the way browsers do, at scale, over websockets in
// either generation: Engine.IO v3 / socket.io protocol 4 (what socket.io-client 2.x
// speaks: the client pings) or Engine.IO v4 / socket.io protocol 5 (3.x and 4.x: the server
// pings, the client pongs, and the client sends a CONNECT, with the token in it when it
// goes in `auth`). JWT in the handshake query or in CONNECT, subscribe with an ack, events
// published through the Pusher-signed HTTP API. The same client drives Jetsocket and the
// Node reference server.
package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Engine.IO packet types as text (the same in v3 and v4), and the socket.io packet types
// after "4" (the same in protocols 4 and 5; "4" is ERROR in 4 and CONNECT_ERROR in 5).
const (
	eioOpen    = '0'
	eioClose   = '1'
	eioPing    = '2'
	eioPong    = '3'
	eioMessage = '4'

	sioConnect = '0'
	sioEvent   = '2'
	sioAck     = '3'
	sioError   = '4'
)

// EventConnectionEstablished is the event both servers send once a connection is ready.
const EventConnectionEstablished = "jetsocket:connection_established"

// client is one socket.io connection.
type client struct {
	ws           *websocket.Conn
	eio          int  // 3: the client pings; 4: the server pings and the read loop pongs
	centrifugo   bool // Centrifugo's JSON protocol instead of socket.io (centrifugo.go)
	pusher       bool // Pusher protocol 7 instead of socket.io (pusher.go)
	pingInterval time.Duration

	wmu    sync.Mutex // gorilla allows one writer at a time
	nextID int

	amu  sync.Mutex
	acks map[int]chan json.RawMessage

	event       string // the event name whose deliveries are recorded
	eventPrefix []byte // a Pusher timing event's opening, built once
	onEvent     func(seq int, sentNanos, recvNanos int64)
	readDone    chan struct{}
	readErr     atomic.Value // error
}

// dialer returns a websocket dialer that spreads connections over local loopback
// addresses, so tens of thousands of connections (and their TIME_WAITs across runs) do
// not run out of ephemeral ports of one source address.
func dialer(localIPs []net.IP) *websocket.Dialer {
	var n atomic.Uint64
	nd := &net.Dialer{Timeout: 10 * time.Second}
	return &websocket.Dialer{
		HandshakeTimeout: 15 * time.Second,
		ReadBufferSize:   2048,
		WriteBufferSize:  1024,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			d := *nd
			if len(localIPs) > 0 {
				d.LocalAddr = &net.TCPAddr{IP: localIPs[n.Add(1)%uint64(len(localIPs))]}
			}
			return d.DialContext(ctx, network, addr)
		},
	}
}

// Handshake is how a client opens its socket.io connection.
type Handshake struct {
	// EIO is the Engine.IO version: 3 (socket.io-client 2.x, the default) or 4 (3.x/4.x).
	EIO int
	// AuthToken sends the token in the CONNECT packet (`auth: {token}`) instead of the
	// query; Engine.IO v4 only.
	AuthToken bool
	// Protocol is "" for socket.io, ProtocolCentrifugo (Centrifugo's own JSON
	// protocol) or ProtocolPusher (Pusher protocol 7 on /app/{key}); EIO and AuthToken
	// are then unused.
	Protocol string
}

// Validate refuses a handshake no client could make.
func (h Handshake) Validate() error {
	switch {
	case h.Protocol == ProtocolCentrifugo, h.Protocol == ProtocolPusher:
		return nil
	case h.Protocol != "":
		return fmt.Errorf("unknown protocol %q", h.Protocol)
	case h.EIO != 3 && h.EIO != 4:
		return fmt.Errorf("EIO must be 3 or 4, got %d", h.EIO)
	case h.AuthToken && h.EIO != 4:
		return errors.New("a token in auth needs EIO 4 (socket.io-client 2.x has no auth)")
	}
	return nil
}

// Label names the client generation in reports: "v2" or "v4" (the socket.io-client
// major), with "+auth" when the token goes in CONNECT.
func (h Handshake) Label() string {
	if h.Protocol != "" {
		return h.Protocol
	}
	if h.EIO == 4 {
		if h.AuthToken {
			return "v4+auth"
		}
		return "v4"
	}
	return "v2"
}

// socketURL is the Engine.IO websocket URL of base; the token goes in the query unless
// h sends it in CONNECT.
func socketURL(base *url.URL, token string, h Handshake) string {
	u := *base
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path = "/socket.io/"
	q := url.Values{}
	q.Set("EIO", strconv.Itoa(h.EIO))
	q.Set("transport", "websocket")
	if !h.AuthToken {
		q.Set("token", token)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// connect dials and reads until the server's connection_established event, which is
// when a client can use the connection. With Engine.IO v4 it answers the open packet with
// a CONNECT (carrying the token when h says so) and the server's pings with pongs.
//
// A Pusher client connects with the app key and no token (public channels are open).
func connect(ctx context.Context, d *websocket.Dialer, base *url.URL, key, token string, h Handshake) (*client, error) {
	switch h.Protocol {
	case ProtocolCentrifugo:
		return connectCentrifugo(ctx, d, base, token)
	case ProtocolPusher:
		return connectPusher(ctx, d, base, key)
	}
	ws, resp, err := d.DialContext(ctx, socketURL(base, token, h), nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: %w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	c := &client{ws: ws, eio: h.EIO, acks: make(map[int]chan json.RawMessage), readDone: make(chan struct{})}
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
		if len(msg) == 0 {
			continue
		}
		switch {
		case msg[0] == eioOpen:
			var open struct {
				PingInterval int `json:"pingInterval"`
			}
			if err := json.Unmarshal(msg[1:], &open); err != nil {
				ws.Close()
				return nil, fmt.Errorf("handshake: open packet: %w", err)
			}
			c.pingInterval = time.Duration(open.PingInterval) * time.Millisecond
			if h.EIO == 4 {
				if err := ws.WriteMessage(websocket.TextMessage, connectPacket(token, h.AuthToken)); err != nil {
					ws.Close()
					return nil, fmt.Errorf("handshake: connect packet: %w", err)
				}
			}
		case msg[0] == eioPing && h.EIO == 4:
			if err := ws.WriteMessage(websocket.TextMessage, pongFrame(msg)); err != nil {
				ws.Close()
				return nil, fmt.Errorf("handshake: pong: %w", err)
			}
		case msg[0] == eioMessage && len(msg) > 1 && msg[1] == sioError:
			ws.Close()
			return nil, fmt.Errorf("handshake: refused: %s", msg[2:])
		case msg[0] == eioMessage && len(msg) > 1 && msg[1] == sioEvent:
			if name, _, ok := parseEvent(msg[2:]); ok && name == EventConnectionEstablished {
				_ = ws.SetReadDeadline(time.Time{})
				return c, nil
			}
		case msg[0] == eioClose:
			ws.Close()
			return nil, errors.New("handshake: server closed the session")
		}
	}
}

// connectPacket is socket.io protocol 5's CONNECT to the main namespace: `40`, or
// `40{"token":"..."}` when the token goes in auth.
func connectPacket(token string, inAuth bool) []byte {
	if !inAuth {
		return []byte("40")
	}
	body, _ := json.Marshal(struct {
		Token string `json:"token"`
	}{token}) // a string field cannot fail to marshal
	return append([]byte("40"), body...)
}

// pongFrame answers an Engine.IO v4 ping ("2", or "2probe" and the like) with the same
// payload, as engine.io-client does.
func pongFrame(ping []byte) []byte {
	return append([]byte{eioPong}, ping[1:]...)
}

// start runs the read loop: acks go to their waiters, events named c.event to onEvent.
func (c *client) start(event string, onEvent func(seq int, sentNanos, recvNanos int64)) {
	c.event, c.onEvent = event, onEvent
	go c.readLoop()
}

// readLoop reads frames into one buffer per connection and reads the timing events with
// a scan rather than encoding/json. The tool shares the cores with the server it
// measures, and every microsecond it spends per delivery delays the deliveries after
// it: with ReadMessage and encoding/json it cost about 18 µs per delivery (CPU profile
// at 10,000 connections), more than the server's write.
func (c *client) readLoop() {
	defer close(c.readDone)
	buf := make([]byte, 0, 512)
	for {
		var err error
		buf, err = c.readFrame(buf[:0])
		if err != nil {
			c.readErr.Store(err)
			return
		}
		recv := time.Now().UnixNano() // before any parsing: the tool's own work is not the server's latency
		msg := buf
		if c.centrifugo {
			if err := c.centrifugoFrame(msg, recv); err != nil {
				c.readErr.Store(err)
				return
			}
			continue
		}
		if c.pusher {
			if err := c.pusherMessage(msg, recv); err != nil {
				c.readErr.Store(err)
				return
			}
			continue
		}
		if c.eio == 4 && len(msg) > 0 && msg[0] == eioPing {
			// A late pong gets the connection closed by the server (pingTimeout).
			if err := c.pong(msg); err != nil {
				c.readErr.Store(err)
				return
			}
			continue
		}
		if len(msg) < 2 || msg[0] != eioMessage {
			continue // pongs
		}
		switch msg[1] {
		case sioEvent:
			if c.onEvent == nil {
				continue
			}
			if seq, sent, ok := scanTick(msg[2:], c.event); ok {
				c.onEvent(seq, sent, recv)
				continue
			}
			name, args, ok := parseEvent(msg[2:])
			if !ok || name != c.event || len(args) == 0 {
				continue
			}
			var p struct {
				Data struct {
					T   int64 `json:"t"`
					Seq int   `json:"seq"`
				} `json:"data"`
			}
			if json.Unmarshal(args[0], &p) == nil {
				c.onEvent(p.Data.Seq, p.Data.T, recv)
			}
		case sioAck:
			id, rest := leadingInt(msg[2:])
			var args []json.RawMessage
			if id < 0 || json.Unmarshal(rest, &args) != nil {
				continue
			}
			c.amu.Lock()
			ch := c.acks[id]
			delete(c.acks, id)
			c.amu.Unlock()
			if ch != nil {
				var first json.RawMessage
				if len(args) > 0 {
					first = args[0]
				}
				ch <- first
			}
		}
	}
}

// readFrame appends the next message to buf.
func (c *client) readFrame(buf []byte) ([]byte, error) {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return buf, err
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// scanTick reads the timing event the tool triggers, as both servers deliver it:
// ["<event>",{"channel":"...","data":{"t":<nanos>,"seq":<n>}}]. Anything else is left
// to the JSON path (ok false).
func scanTick(b []byte, event string) (seq int, sent int64, ok bool) {
	if len(b) < len(event)+4 || b[0] != '[' || b[1] != '"' || string(b[2:2+len(event)]) != event || b[2+len(event)] != '"' {
		return 0, 0, false
	}
	return scanTimes(b)
}

// scanTimes reads the send time and sequence number of a timing event's data,
// {"t":<nanos>,"seq":<n>}, wherever "data" is in b.
func scanTimes(b []byte) (seq int, sent int64, ok bool) {
	i := bytes.Index(b, []byte(`"data":{"t":`))
	if i < 0 {
		return 0, 0, false
	}
	rest := b[i+len(`"data":{"t":`):]
	t, rest, ok := scanInt(rest)
	if !ok || !bytes.HasPrefix(rest, []byte(`,"seq":`)) {
		return 0, 0, false
	}
	s, rest, ok := scanInt(rest[len(`,"seq":`):])
	if !ok || len(rest) == 0 || rest[0] != '}' {
		return 0, 0, false
	}
	return int(s), t, true
}

// scanInt parses the non-negative decimal at the start of b.
func scanInt(b []byte) (int64, []byte, bool) {
	var n int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9' && i < 19; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	return n, b[i:], i > 0
}

// emitAck sends event with payload and waits for the ack's first argument.
func (c *client) emitAck(ctx context.Context, event string, payload any) (json.RawMessage, error) {
	body, err := json.Marshal([]any{event, payload})
	if err != nil {
		return nil, err
	}
	ch := make(chan json.RawMessage, 1)
	c.wmu.Lock()
	id := c.nextID
	c.nextID++
	c.amu.Lock()
	c.acks[id] = ch
	c.amu.Unlock()
	frame := append([]byte("42"+strconv.Itoa(id)), body...)
	err = c.ws.WriteMessage(websocket.TextMessage, frame)
	c.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("emit %s: %w", event, err)
	}
	select {
	case a := <-ch:
		return a, nil
	case <-c.readDone:
		return nil, fmt.Errorf("emit %s: connection closed", event)
	case <-ctx.Done():
		return nil, fmt.Errorf("emit %s: no ack: %w", event, ctx.Err())
	}
}

// pong answers a server's ping (Engine.IO v4).
func (c *client) pong(ping []byte) error {
	frame := pongFrame(ping)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, frame)
}

// ping sends an Engine.IO v3 ping; the server must see one every pingInterval. (In v4
// the server pings instead.)
func (c *client) ping() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, []byte{eioPing})
}

func (c *client) close() {
	_ = c.ws.Close()
}

// parseEvent splits a socket.io event body `[id]["name", args...]`.
func parseEvent(b []byte) (name string, args []json.RawMessage, ok bool) {
	_, b = leadingInt(b)
	var arr []json.RawMessage
	if json.Unmarshal(b, &arr) != nil || len(arr) == 0 {
		return "", nil, false
	}
	if json.Unmarshal(arr[0], &name) != nil {
		return "", nil, false
	}
	return name, arr[1:], true
}

// leadingInt parses the packet id that may precede a socket.io packet's JSON; -1 when
// there is none.
func leadingInt(b []byte) (int, []byte) {
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == 0 {
		return -1, b
	}
	n, err := strconv.Atoi(string(b[:i]))
	if err != nil {
		return -1, b
	}
	return n, bytes.TrimSpace(b[i:])
}
