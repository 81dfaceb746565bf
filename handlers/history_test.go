package handlers

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
)

func TestChannelHistory(t *testing.T) {
	gin.SetMode(gin.TestMode)
	policy := history.Policy{Default: history.Limits{Size: 10, TTL: time.Minute}, Rules: []history.Rule{{Pattern: "off-*"}}}
	h := hub.New(hub.NewMemoryBrokerWithHistory(history.NewMemory(), policy), hub.NewMemoryPresence(), nil, hub.Hooks{}, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	h.Publish(ctx, hub.Message{Channel: "news", Event: "a", Data: json.RawMessage(`{"n":1}`)})
	h.Publish(ctx, hub.Message{Channel: "news", Event: "client-b", UserID: "u1"})
	h.Publish(ctx, hub.Message{Channel: "news", Event: "c", Data: json.RawMessage(`3`)})
	r := gin.New()
	r.GET("/apps/:app_id/channels/:channel_name/history", ChannelHistory(h, slog.New(slog.DiscardHandler)))
	get := func(url string) (int, map[string]any) {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, url, nil))
		var m map[string]any
		json.Unmarshal(w.Body.Bytes(), &m)
		return w.Code, m
	}
	code, m := get("/apps/1/channels/news/history")
	pubs, _ := m["publications"].([]any)
	if code != 200 || m["offset"] != float64(3) || m["epoch"] == "" || len(pubs) != 3 {
		t.Fatalf("%d %v", code, m)
	}
	b, _ := json.Marshal(pubs)
	if want := `[{"data":{"n":1},"event":"a","offset":1},{"data":null,"event":"client-b","offset":2,"user_id":"u1"},{"data":3,"event":"c","offset":3}]`; string(b) != want {
		t.Fatalf("publications %s, want %s", b, want)
	}
	if _, m := get("/apps/1/channels/news/history?since=1&limit=1"); len(m["publications"].([]any)) != 1 || m["publications"].([]any)[0].(map[string]any)["offset"] != float64(2) {
		t.Fatalf("since and limit: %v", m)
	}
	if code, m := get("/apps/1/channels/fresh/history"); code != 200 || m["offset"] != float64(0) || len(m["publications"].([]any)) != 0 {
		t.Fatalf("a channel never published on: %d %v", code, m)
	}
	for _, bad := range []string{"?limit=0", "?limit=x", "?limit=10001", "?since=-1", "?since=x"} {
		if code, m := get("/apps/1/channels/news/history" + bad); code != 400 || m["error"] != "invalid_request" {
			t.Fatalf("%s: %d %v", bad, code, m)
		}
	}
	if code, m := get("/apps/1/channels/off-x/history"); code != 404 || m["error"] != "history_off" {
		t.Fatalf("a channel without history: %d %v", code, m)
	}
	if code, _ := get("/apps/1/channels/bad%20name/history"); code != 400 {
		t.Fatalf("a bad channel name: %d", code)
	}
}
