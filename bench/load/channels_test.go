package load_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/bench/load"
)

// A fleet puts each channel's clients on one node, or with Spread one on each node.
// Two standalone nodes (no Redis: a trigger reaches only its own node's clients), 3
// channels, 2 clients each, one publication per channel triggered on node A: A serves
// channels 0 and 2 (4 clients), or with Spread one client of every channel (3).
func TestChannelsFleetPlacesClientsByLayout(t *testing.T) {
	a, b := startJetsocket(t), startJetsocket(t)
	for _, tc := range []struct {
		spread bool
		want   int64
	}{{false, 4}, {true, 3}} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		f, err := load.ConnectChannels(ctx, load.Target{URL: a, AppID: "bench", Key: "bench-key", Secret: appSecret, Token: minter(t)},
			load.ChannelsConfig{Nodes: []*url.URL{a, b}, Channels: 3, PerChannel: 2, Spread: tc.spread})
		if err != nil {
			t.Fatal(err)
		}
		if f.Clients() != 6 {
			t.Fatalf("%d clients", f.Clients())
		}
		if err := f.Publish(ctx, 3); err != nil {
			t.Fatal(err)
		}
		if err := f.WaitDelivered(ctx, tc.want, 10*time.Second); err != nil {
			t.Fatalf("spread %v: %v", tc.spread, err)
		}
		time.Sleep(200 * time.Millisecond) // anything more would be a misplaced client
		if got := f.Delivered(); got != tc.want {
			t.Fatalf("spread %v: node A's clients got %d, want %d", tc.spread, got, tc.want)
		}
		f.Close()
	}
}
