package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Kind is one connection lifecycle.
type Kind string

// The lifecycles a soak mixes. Each is what a browser or a broken network does.
const (
	// WS: websocket only, connect, socket.io DISCONNECT, close.
	WS Kind = "ws"
	// WSPresenceDrop: websocket, presence subscribe, then the TCP connection is cut
	// (no DISCONNECT, no close frame), as when a laptop sleeps.
	WSPresenceDrop Kind = "ws-presence-drop"
	// UpgradePresence: polling handshake, upgrade to websocket (probe, UPGRADE),
	// presence subscribe, DISCONNECT: socket.io-client's default path.
	UpgradePresence Kind = "upgrade-presence"
	// UpgradeDrop: polling, upgrade, then the websocket is cut.
	UpgradeDrop Kind = "upgrade-drop"
	// Polling: polling only, public subscribe, Engine.IO CLOSE.
	Polling Kind = "polling"
	// ProbeDrop: polling, websocket probe answered, then both are abandoned mid-upgrade.
	// The session ends only at its ping timeout (85 s): use with a long settle.
	ProbeDrop Kind = "probe-drop"
	// Refused: a handshake with a bad token, answered 401.
	Refused Kind = "refused"
)

// AllKinds are every lifecycle; QuickKinds leave out the ones that end only at the ping
// timeout.
var (
	AllKinds   = []Kind{WS, WSPresenceDrop, UpgradePresence, UpgradeDrop, Polling, ProbeDrop, Refused}
	QuickKinds = []Kind{WS, WSPresenceDrop, UpgradePresence, UpgradeDrop, Polling, Refused}
)

// ParseKinds reads a comma-separated list of kinds; "all" and "quick" name the sets.
func ParseKinds(s string) ([]Kind, error) {
	switch s {
	case "all":
		return AllKinds, nil
	case "quick", "":
		return QuickKinds, nil
	}
	var ks []Kind
	for _, f := range strings.Split(s, ",") {
		k := Kind(strings.TrimSpace(f))
		ok := false
		for _, a := range AllKinds {
			ok = ok || a == k
		}
		if !ok {
			return nil, fmt.Errorf("unknown kind %q", k)
		}
		ks = append(ks, k)
	}
	return ks, nil
}

// cycler runs lifecycles against one server.
type cycler struct {
	base     *url.URL
	http     *http.Client
	ws       *websocket.Dialer
	token    func(i int) (string, error)
	channels int
}

func (c *cycler) run(ctx context.Context, k Kind, i int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	token, err := c.token(i)
	if err != nil {
		return err
	}
	presence := fmt.Sprintf(`42%d["jetsocket:subscribe",{"channel":"presence-soak-%d"}]`, 1, i%c.channels)
	public := fmt.Sprintf(`42%d["jetsocket:subscribe",{"channel":"soak-%d"}]`, 1, i%c.channels)
	switch k {
	case WS:
		ws, err := c.dialWS(ctx, url.Values{"token": {token}})
		if err != nil {
			return err
		}
		defer ws.Close()
		if err := readUntil(ws, established); err != nil {
			return err
		}
		return closeWS(ws)
	case WSPresenceDrop:
		ws, err := c.dialWS(ctx, url.Values{"token": {token}})
		if err != nil {
			return err
		}
		defer ws.Close()
		if err := readUntil(ws, established); err != nil {
			return err
		}
		if err := subscribeWS(ws, presence); err != nil {
			return err
		}
		return ws.UnderlyingConn().Close()
	case UpgradePresence, UpgradeDrop, ProbeDrop:
		sid, err := c.pollingOpen(ctx, token)
		if err != nil {
			return err
		}
		ws, err := c.dialWS(ctx, url.Values{"sid": {sid}})
		if err != nil {
			return err
		}
		defer ws.Close()
		if err := send(ws, "2probe"); err != nil {
			return err
		}
		if err := readUntil(ws, func(f string) bool { return f == "3probe" }); err != nil {
			return err
		}
		if k == ProbeDrop {
			return ws.UnderlyingConn().Close()
		}
		if err := send(ws, "5"); err != nil {
			return err
		}
		if k == UpgradeDrop {
			// An event first, so the upgrade is known to be complete when the cut comes.
			if err := subscribeWS(ws, public); err != nil {
				return err
			}
			return ws.UnderlyingConn().Close()
		}
		if err := subscribeWS(ws, presence); err != nil {
			return err
		}
		return closeWS(ws)
	case Polling:
		sid, err := c.pollingOpen(ctx, token)
		if err != nil {
			return err
		}
		if err := c.post(ctx, sid, public); err != nil {
			return err
		}
		if _, err := c.pollUntil(ctx, sid, ackOK); err != nil {
			return err
		}
		return c.post(ctx, sid, "1")
	case Refused:
		resp, err := c.get(ctx, url.Values{"transport": {"polling"}, "token": {"not-a-token"}})
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("bad token answered %d, want 401", resp.StatusCode)
		}
		return nil
	}
	return fmt.Errorf("unknown kind %q", k)
}

var (
	established = func(f string) bool { return strings.HasPrefix(f, `42["jetsocket:connection_established"`) }
	ackOK       = func(f string) bool { return strings.HasPrefix(f, `431[{"ok":true`) }
	ackAny      = func(f string) bool { return strings.HasPrefix(f, `431[`) }
	sidRE       = regexp.MustCompile(`"sid":"([^"]+)"`)
)

func (c *cycler) socketURL(scheme string, q url.Values) string {
	u := *c.base
	u.Scheme = scheme
	u.Path = "/socket.io/"
	q.Set("EIO", "3")
	if q.Get("transport") == "" {
		if scheme == "ws" || scheme == "wss" {
			q.Set("transport", "websocket")
		} else {
			q.Set("transport", "polling")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func (c *cycler) dialWS(ctx context.Context, q url.Values) (*websocket.Conn, error) {
	scheme := "ws"
	if c.base.Scheme == "https" {
		scheme = "wss"
	}
	ws, resp, err := c.ws.DialContext(ctx, c.socketURL(scheme, q), nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("websocket: %w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("websocket: %w", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	return ws, nil
}

func send(ws *websocket.Conn, frame string) error {
	return ws.WriteMessage(websocket.TextMessage, []byte(frame))
}

func readUntil(ws *websocket.Conn, pred func(string) bool) error {
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("websocket read: %w", err)
		}
		if pred(string(msg)) {
			return nil
		}
	}
}

func subscribeWS(ws *websocket.Conn, packet string) error {
	if err := send(ws, packet); err != nil {
		return err
	}
	var ack string
	if err := readUntil(ws, func(f string) bool { ack = f; return ackAny(f) }); err != nil {
		return err
	}
	if !ackOK(ack) {
		return fmt.Errorf("subscribe refused: %.200s", ack)
	}
	return nil
}

// closeWS leaves as socket.io-client does: DISCONNECT, then a close frame.
func closeWS(ws *websocket.Conn) error {
	if err := send(ws, "41"); err != nil {
		return err
	}
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return nil
}

func (c *cycler) get(ctx context.Context, q url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.socketURL(c.base.Scheme, q), nil)
	if err != nil {
		return nil, err
	}
	return c.http.Do(req)
}

// pollingOpen does the polling handshake and polls until connection_established.
func (c *cycler) pollingOpen(ctx context.Context, token string) (string, error) {
	resp, err := c.get(ctx, url.Values{"token": {token}, "b64": {"1"}})
	if err != nil {
		return "", fmt.Errorf("polling handshake: %w", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := sidRE.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		return "", fmt.Errorf("polling handshake: HTTP %d %.200s", resp.StatusCode, body)
	}
	sid := string(m[1])
	if strings.Contains(string(body), `42["jetsocket:connection_established"`) {
		return sid, nil
	}
	if _, err := c.pollUntil(ctx, sid, established); err != nil {
		return "", err
	}
	return sid, nil
}

// pollUntil long-polls until a packet matches pred.
func (c *cycler) pollUntil(ctx context.Context, sid string, pred func(string) bool) (string, error) {
	for range 20 {
		resp, err := c.get(ctx, url.Values{"sid": {sid}, "b64": {"1"}})
		if err != nil {
			return "", fmt.Errorf("poll: %w", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("poll: HTTP %d %.200s", resp.StatusCode, body)
		}
		for _, p := range decodePayload(string(body)) {
			if pred(p) {
				return p, nil
			}
		}
	}
	return "", errors.New("poll: packet never came")
}

func (c *cycler) post(ctx context.Context, sid, packet string) error {
	body := strconv.Itoa(len(packet)) + ":" + packet
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.socketURL(c.base.Scheme, url.Values{"sid": {sid}, "b64": {"1"}}), strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("post: HTTP %d %.200s", resp.StatusCode, msg)
	}
	return nil
}

// decodePayload splits an Engine.IO v3 text payload (`<length>:<packet>`...).
func decodePayload(s string) []string {
	var out []string
	for len(s) > 0 {
		colon := strings.IndexByte(s, ':')
		if colon < 0 {
			break
		}
		n, err := strconv.Atoi(s[:colon])
		if err != nil || colon+1+n > len(s) {
			break
		}
		out = append(out, s[colon+1:colon+1+n])
		s = s[colon+1+n:]
	}
	return out
}
