package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/server/channels"
	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/protocol"
)

// A guard for private-vip-* channels and channel hooks that
// censors, drops and logs client events on chat channels.
func TestExtensions(t *testing.T) {
	var mu sync.Mutex
	var joined []string
	ext := Extensions{
		Guards: []channels.Guard{func(r channels.Request) error {
			if !strings.HasPrefix(r.Channel.Name, "private-vip-") {
				return channels.ErrNoOpinion
			}
			if r.Claims.HasGroup("ops") {
				return nil
			}
			return channels.Denied("VIPs only")
		}},
		ChannelHooks: []protocol.ChannelHooks{{
			Pattern: "presence-chat-*",
			OnSubscribe: func(_ context.Context, ev protocol.Subscription) {
				mu.Lock()
				joined = append(joined, ev.UserID+"@"+ev.Channel)
				mu.Unlock()
			},
			OnClientEvent: func(_ context.Context, ev *protocol.ClientEvent) error {
				var msg struct{ Text string }
				if err := json.Unmarshal(ev.Data, &msg); err != nil {
					return errs.New(errs.Invalid, "bad_message", "messages are {text}")
				}
				if msg.Text == "spam" {
					return protocol.ErrDrop
				}
				msg.Text = strings.ReplaceAll(msg.Text, "darn", "****")
				ev.Data, _ = json.Marshal(msg)
				return nil
			},
		}},
	}
	ts := startServerWith(t, nil, ext)
	alice, _, err := ts.dial(t, ts.login(t, "alice", "alice123"))
	if err != nil {
		t.Fatal(err)
	}
	alice.established()
	bob, _, err := ts.dial(t, ts.login(t, "bob", "bob123"))
	if err != nil {
		t.Fatal(err)
	}
	bob.established()

	if res := alice.ack(1, "jetsocket:subscribe", map[string]string{"channel": "private-vip-lounge"}); res["ok"] != true {
		t.Fatalf("alice (ops) refused: %v", res)
	}
	if res := bob.ack(1, "jetsocket:subscribe", map[string]string{"channel": "private-vip-lounge"}); res["ok"] != false || res["status"] != float64(403) || res["error"] != "VIPs only" {
		t.Fatalf("bob not refused by the guard: %v", res)
	}
	for _, c := range []*wsClient{alice, bob} {
		if res := c.ack(2, "jetsocket:subscribe", map[string]string{"channel": "presence-chat-general"}); res["ok"] != true {
			t.Fatalf("chat subscribe: %v", res)
		}
	}

	if res := alice.ack(3, "client-message", map[string]any{"channel": "presence-chat-general", "data": map[string]string{"text": "spam"}}); res["ok"] != true {
		t.Fatalf("dropped event ack: %v", res)
	}
	if res := alice.ack(4, "client-message", map[string]any{"channel": "presence-chat-general", "data": "not an object"}); res["code"] != "bad_message" {
		t.Fatalf("refused event ack: %v", res)
	}
	if res := alice.ack(5, "client-message", map[string]any{"channel": "presence-chat-general", "data": map[string]string{"text": "darn it"}}); res["ok"] != true {
		t.Fatalf("rewritten event ack: %v", res)
	}
	got := bob.event("client-message")
	if data, _ := got["data"].(map[string]any); data["Text"] != "**** it" || got["user_id"] != "1" {
		t.Fatalf("bob got %v: want only the rewritten message, from alice", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(joined, " ") != "1@presence-chat-general 2@presence-chat-general" {
		t.Fatalf("OnSubscribe saw %v", joined)
	}
}

// An extension that would shadow a built-in stops start-up with a clear error instead of
// silently replacing it.
func TestExtensionClashesStopStart(t *testing.T) {
	ok := func(protocol.Request[json.RawMessage]) (any, error) { return nil, nil }
	for name, ext := range map[string]Extensions{
		"built-in event":  {Events: []protocol.Event{protocol.On("jetsocket:subscribe", ok)}},
		"client- event":   {Events: []protocol.Event{protocol.On("client-x", ok)}},
		"duplicate event": {Events: []protocol.Event{protocol.On("chat:send", ok), protocol.On("chat:send", ok)}},
		"built-in route": {Routes: func(r gin.IRouter, _ Services) {
			r.GET("/healthz", func(*gin.Context) {})
		}},
		// Under /apps/ a route would look signed without the API's signature check.
		"route under /apps/": {Routes: func(r gin.IRouter, _ Services) {
			r.POST("/apps/:app_id/my-events", func(*gin.Context) {})
		}},
		"route under /apps/ in a group": {Routes: func(r gin.IRouter, _ Services) {
			r.Group("/apps").GET("/:app_id/stats", func(*gin.Context) {})
		}},
		"route whose first segment is a parameter": {Routes: func(r gin.IRouter, _ Services) {
			r.GET("/:tenant/report", func(*gin.Context) {})
		}},
	} {
		// A start that wrongly succeeds ends with the context, and is reported.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := RunWith(ctx, Options{Args: []string{"-env-file", ""}, Getenv: func(k string) string {
			return map[string]string{"JWT_SECRET": testSecret, "ADDR": "127.0.0.1:0"}[k]
		}, Stdout: io.Discard, Stderr: io.Discard, Extensions: ext})
		cancel()
		if err == nil {
			t.Errorf("%s: started", name)
		} else if strings.Contains(name, "/apps/") && !strings.Contains(err.Error(), "signature") {
			t.Errorf("%s: the error does not say why: %v", name, err)
		}
	}
	// Beside /apps/, a route of one's own is fine (the README's example is tested
	// whole in examples/extending).
	ts := startServerWith(t, nil, Extensions{Routes: func(r gin.IRouter, _ Services) {
		r.GET("/application/stats", func(c *gin.Context) { c.String(200, "ok") })
	}})
	res, err := http.Get(ts.base + "/application/stats")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("own route: %d", res.StatusCode)
	}
}

// A developer's route reads a channel's history through Services.Channels.
func TestExtensionReadsHistory(t *testing.T) {
	ext := Extensions{Routes: func(r gin.IRouter, s Services) {
		r.GET("/my/history", func(c *gin.Context) {
			for i := range 3 {
				if err := s.Trigger.Trigger(c, []string{"news"}, "e", i, ""); err != nil {
					s.Abort(c, err)
					return
				}
			}
			res, err := s.Channels.History(c, "news", history.Query{After: 1})
			if err != nil {
				s.Abort(c, err)
				return
			}
			c.JSON(200, res)
		})
	}}
	ts := startServerWith(t, nil, ext)
	resp, err := http.Get("http://" + ts.host + "/my/history")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res history.Result
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	if res.Position.Offset != 3 || len(res.Publications) != 2 || string(res.Publications[1].Data) != "2" {
		t.Fatalf("%+v", res)
	}
}
