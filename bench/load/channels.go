package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jetsocket/jetsocket/server/apisig"
	apitrigger "github.com/jetsocket/jetsocket/server/trigger"
)

// ChannelsConfig is the shape of a many-channel fleet: Channels channels, PerChannel
// socket.io (v2) clients on each, channel c's clients all on node c % len(Nodes), so
// each node serves its share of the channels and no other; with Spread, each channel's
// clients are spread over the nodes instead (its k-th on node k % len(Nodes)), so every
// node serves every channel.
type ChannelsConfig struct {
	Nodes       []*url.URL
	Channels    int
	PerChannel  int
	Spread      bool
	Concurrency int
	LocalIPs    []net.IP
}

// Fleet is a ChannelsConfig's clients, connected and subscribed.
type Fleet struct {
	t         Target
	cfg       ChannelsConfig
	clients   []*client
	delivered atomic.Int64
	http      *http.Client
	stopPings context.CancelFunc
}

// ChannelName is the name of channel c of a fleet.
func ChannelName(c int) string { return "ch-" + strconv.Itoa(c) }

// ConnectChannels connects and subscribes a fleet; t.URL is where Publish triggers (a
// node of the cluster, or one without clients so that the serving nodes' CPU is their
// receiving and delivering alone). Any failed connect or subscribe fails the fleet.
func ConnectChannels(ctx context.Context, t Target, cfg ChannelsConfig) (*Fleet, error) {
	if len(cfg.Nodes) == 0 || cfg.Channels <= 0 || cfg.PerChannel <= 0 {
		return nil, fmt.Errorf("channels fleet: %d nodes, %d channels, %d per channel", len(cfg.Nodes), cfg.Channels, cfg.PerChannel)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 50
	}
	f := &Fleet{t: t, cfg: cfg, http: &http.Client{Timeout: 30 * time.Second}}
	n := cfg.Channels * cfg.PerChannel
	f.clients = make([]*client, n)
	errs := make([]error, n)
	d := dialer(cfg.LocalIPs)
	h := Handshake{EIO: 3}
	// Client i is on channel i % Channels, so every channel fills up alike.
	parallel(n, cfg.Concurrency, func(i int) {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		ch := i % cfg.Channels
		tok, err := t.Token(i)
		if err != nil {
			errs[i] = err
			return
		}
		c, err := connect(cctx, d, cfg.Nodes[cfg.node(i)], t.Key, tok, h)
		if err != nil {
			errs[i] = err
			return
		}
		f.clients[i] = c
		c.start("tick", func(int, int64, int64) { f.delivered.Add(1) })
		ack, err := c.emitAck(cctx, "jetsocket:subscribe", map[string]string{"channel": ChannelName(ch)})
		var a struct {
			OK bool `json:"ok"`
		}
		if err == nil && (json.Unmarshal(ack, &a) != nil || !a.OK) {
			err = fmt.Errorf("subscribe refused: %s", ack)
		}
		errs[i] = err
	})
	for i, err := range errs {
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("channels fleet: client %d: %w", i, err)
		}
	}
	// Engine.IO v3: the client pings, or the server drops it after its ping timeout.
	var pingCtx context.Context
	pingCtx, f.stopPings = context.WithCancel(context.Background())
	go keepAlive(pingCtx, f.clients)
	return f, nil
}

// node is which of Nodes client i connects to.
func (cfg ChannelsConfig) node(i int) int {
	if cfg.Spread {
		return i / cfg.Channels % len(cfg.Nodes)
	}
	return i % cfg.Channels % len(cfg.Nodes)
}

// Clients is how many clients the fleet has.
func (f *Fleet) Clients() int { return len(f.clients) }

// Delivered is how many events the fleet's clients have received.
func (f *Fleet) Delivered() int64 { return f.delivered.Load() }

// Publish makes n publications, whole rounds over the channels in turn (publication p
// is on channel p % Channels), triggered through t.URL's HTTP API, as many channels per
// trigger as the API takes: each channel of a trigger is one publication in Redis.
// Each reaches PerChannel clients.
func (f *Fleet) Publish(ctx context.Context, n int) error {
	for p := 0; p < n; {
		names := make([]string, 0, apitrigger.MaxChannels)
		for ; p < n && len(names) < apitrigger.MaxChannels; p++ {
			names = append(names, ChannelName(p%f.cfg.Channels))
		}
		if err := f.trigger(ctx, names, p); err != nil {
			return err
		}
	}
	return nil
}

func (f *Fleet) trigger(ctx context.Context, channels []string, seq int) error {
	data := `{"t":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `,"seq":` + strconv.Itoa(seq) + `}`
	body, err := json.Marshal(map[string]any{"name": "tick", "channels": channels, "data": data})
	if err != nil {
		return err
	}
	path := "/apps/" + f.t.AppID + "/events"
	q := url.Values{}
	apisig.SignQuery(http.MethodPost, path, q, body, f.t.Key, f.t.Secret, time.Now())
	u := *f.t.URL
	u.Path, u.RawQuery = path, q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.http.Do(req)
	if err != nil {
		return fmt.Errorf("trigger: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("trigger: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

// WaitDelivered waits until the fleet has received want events in all, or timeout.
func (f *Fleet) WaitDelivered(ctx context.Context, want int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for f.delivered.Load() < want {
		if time.Now().After(deadline) {
			return fmt.Errorf("delivered %d of %d after %v", f.delivered.Load(), want, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// Close disconnects every client.
func (f *Fleet) Close() {
	if f.stopPings != nil {
		f.stopPings()
	}
	for _, c := range f.clients {
		if c != nil {
			c.close()
		}
	}
}
