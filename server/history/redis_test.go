package history_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/history/historytest"
	"github.com/jetsocket/jetsocket/server/redistest"
)

// startRedis runs a throwaway redis-server and returns a client of it.
func startRedis(t *testing.T) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Start(t).Addr()})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestRedisStore(t *testing.T) {
	rdb := startRedis(t)
	n := 0
	historytest.Run(t, func(t *testing.T) historytest.Backend {
		n++ // each test its own keys, in one server
		return historytest.Backend{
			Store: history.NewRedis(rdb, fmt.Sprintf("jetsocket:t%d:", n)),
			Lose: func(t *testing.T) {
				if err := rdb.FlushAll(context.Background()).Err(); err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}

// The publication goes out on pub/sub with its position, in the script that keeps it.
func TestRedisAddAndPublish(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	s := history.NewRedis(rdb, "jetsocket:app:")
	ps := rdb.Subscribe(ctx, "out")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	l := history.Limits{Size: 5, TTL: time.Minute}
	pos, err := s.AddAndPublish(ctx, "news", history.Publication{Event: "e"}, l, "out", []byte(`{"x":1}`))
	if err != nil || pos.Offset != 1 {
		t.Fatal(pos, err)
	}
	msg, err := ps.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, body, ok, err := history.ParsePublished(msg.Payload)
	if err != nil || !ok || got != pos || body != `{"x":1}` {
		t.Fatalf("%q: %+v %q %v %v", msg.Payload, got, body, ok, err)
	}
	if _, body, ok, err := history.ParsePublished(`{"plain":true}`); err != nil || ok || body != `{"plain":true}` {
		t.Fatalf("a payload without position: %q %v %v", body, ok, err)
	}
	for _, bad := range []string{"p", "p1", "p1:", "px:e:{}", "p1::{}"} {
		if _, _, _, err := history.ParsePublished(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}
