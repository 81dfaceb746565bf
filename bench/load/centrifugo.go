package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Centrifugo's bidirectional JSON protocol (client protocol v2) over its websocket
// endpoint, as centrifuge-js speaks it: a connect command carrying the JWT, a subscribe
// command, publications pushed as {"push":{"channel":...,"pub":{"data":...}}}, and the
// server's empty-object pings answered with empty-object pongs. Replies carry the
// command's id; one frame may hold several, one per line.

// ProtocolCentrifugo is the Handshake.Protocol of Centrifugo's clients.
const ProtocolCentrifugo = "centrifugo"

// centrifugoURL is base's websocket endpoint.
func centrifugoURL(base *url.URL) string {
	u := *base
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path, u.RawQuery = "/connection/websocket", ""
	return u.String()
}

// connectCentrifugo dials and sends the connect command; the connection is ready once
// its reply arrives.
func connectCentrifugo(ctx context.Context, d *websocket.Dialer, base *url.URL, token string) (*client, error) {
	ws, resp, err := d.DialContext(ctx, centrifugoURL(base), nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: %w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	c := &client{ws: ws, centrifugo: true, acks: make(map[int]chan json.RawMessage), readDone: make(chan struct{}), nextID: 2}
	deadline := time.Now().Add(15 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = ws.SetReadDeadline(deadline)
	cmd, _ := json.Marshal(map[string]any{"id": 1, "connect": map[string]string{"token": token, "name": "jetbench"}})
	if err := ws.WriteMessage(websocket.TextMessage, cmd); err != nil {
		ws.Close()
		return nil, fmt.Errorf("connect command: %w", err)
	}
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			ws.Close()
			return nil, fmt.Errorf("handshake: %w", err)
		}
		for _, line := range bytes.Split(msg, []byte("\n")) {
			if bytes.Equal(bytes.TrimSpace(line), []byte("{}")) {
				_ = ws.WriteMessage(websocket.TextMessage, []byte("{}"))
				continue
			}
			var r centrifugoReply
			if json.Unmarshal(line, &r) != nil || r.ID != 1 {
				continue
			}
			if r.Error != nil {
				ws.Close()
				return nil, fmt.Errorf("handshake: refused: %s", r.Error)
			}
			_ = ws.SetReadDeadline(time.Time{})
			return c, nil
		}
	}
}

type centrifugoReply struct {
	ID    int             `json:"id"`
	Error json.RawMessage `json:"error"`
}

// subscribeCentrifugo sends a subscribe command and waits for its reply.
func (c *client) subscribeCentrifugo(ctx context.Context, channel string) error {
	ch := make(chan json.RawMessage, 1)
	c.wmu.Lock()
	id := c.nextID
	c.nextID++
	c.amu.Lock()
	c.acks[id] = ch
	c.amu.Unlock()
	cmd, _ := json.Marshal(map[string]any{"id": id, "subscribe": map[string]string{"channel": channel}})
	err := c.ws.WriteMessage(websocket.TextMessage, cmd)
	c.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	select {
	case reply := <-ch:
		var r centrifugoReply
		if err := json.Unmarshal(reply, &r); err != nil {
			return fmt.Errorf("subscribe: reply %q: %w", reply, err)
		}
		if r.Error != nil {
			return fmt.Errorf("subscribe refused: %s", r.Error)
		}
		return nil
	case <-c.readDone:
		return errors.New("subscribe: connection closed")
	case <-ctx.Done():
		return fmt.Errorf("subscribe: no reply: %w", ctx.Err())
	}
}

// centrifugoFrame handles one frame read by readLoop: pongs to pings, replies to their
// waiters, publications to onEvent.
func (c *client) centrifugoFrame(msg []byte, recv int64) error {
	for _, line := range bytes.Split(msg, []byte("\n")) {
		// A ping can share a frame with pushes when the server batches its writes (it
		// does under load): unanswered, the server closes the connection.
		if bytes.Equal(bytes.TrimSpace(line), []byte("{}")) {
			if err := c.pongCentrifugo(); err != nil {
				return err
			}
			continue
		}
		if bytes.HasPrefix(line, []byte(`{"push":`)) {
			if c.onEvent != nil {
				if seq, sent, ok := scanTimes(line); ok {
					c.onEvent(seq, sent, recv)
				}
			}
			continue
		}
		id, ok := replyID(line)
		if !ok {
			continue
		}
		c.amu.Lock()
		ch := c.acks[id]
		delete(c.acks, id)
		c.amu.Unlock()
		if ch != nil {
			ch <- append(json.RawMessage(nil), line...)
		}
	}
	return nil
}

func (c *client) pongCentrifugo() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, []byte("{}"))
}

// replyID reads the id a reply starts with: {"id":<n>,...}.
func replyID(line []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(line, []byte(`{"id":`))
	if !ok {
		return 0, false
	}
	n, _, ok := scanInt(rest)
	return int(n), ok
}

// publishCentrifugo sends one timing event through Centrifugo's server HTTP API.
func (tr *trigger) publishCentrifugo(ctx context.Context, seq int) error {
	body := `{"channel":` + strconv.Quote(tr.channel) + `,"data":{"t":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `,"seq":` + strconv.Itoa(seq) + `}}`
	u := *tr.t.URL
	u.Path, u.RawQuery = "/api/publish", ""
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", tr.t.Key)
	resp, err := tr.client.Do(req)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	defer resp.Body.Close()
	var r struct {
		Error json.RawMessage `json:"error"`
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("publish: status %d", resp.StatusCode)
	}
	if json.NewDecoder(resp.Body).Decode(&r) == nil && r.Error != nil {
		return fmt.Errorf("publish: %s", r.Error)
	}
	return nil
}
