package load_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/bench/floor"
	"github.com/jetsocket/jetsocket/bench/load"
	"github.com/jetsocket/jetsocket/server"
	"github.com/jetsocket/jetsocket/tokens"
)

const (
	jwtSecret = "bench-test-secret-0123456789abcdef0123456789"
	appSecret = "bench-app-secret-0123456789"
)

// startJetsocket runs the real server in-process on a free port.
// extra adds to (or overrides) its environment.
func startJetsocket(t *testing.T, extra ...string) *url.URL {
	t.Helper()
	env := map[string]string{
		"ADDR": "127.0.0.1:0", "JWT_SECRET": jwtSecret, "APP_ID": "bench", "APP_KEY": "bench-key",
		"APP_SECRET": appSecret, "LOG_LEVEL": "error", "MAX_CONNECTIONS_PER_USER": "0", "MAX_CONNECTIONS_PER_IP": "0",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.RunWith(ctx, server.Options{
			Args: []string{"-env-file", ""}, Getenv: func(k string) string { return env[k] },
			Stdout: io.Discard, Stderr: os.Stderr, Ready: func(a net.Addr) { addr <- a },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	select {
	case a := <-addr:
		return &url.URL{Scheme: "http", Host: a.String()}
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start in 10s")
	}
	return nil
}

func minter(t *testing.T) func(int) (string, error) {
	m, err := tokens.NewManager(tokens.Config{Secret: []byte(jwtSecret), TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return func(i int) (string, error) {
		tok, _, err := m.Issue(tokens.User{ID: "u" + strconv.Itoa(i)})
		return tok, err
	}
}

// The load tool works end to end against the real server: every connection is
// accepted, subscribed with an ack, and gets every triggered event exactly once. Only
// counts are checked; timings are measurements, not assertions.
// Every client generation: v2 (Engine.IO v3), v4 with the token in the query, v4 with it
// in CONNECT's auth, and pusher-js's protocol 7 on /app/{key}.
func TestRunDeliversEverything(t *testing.T) {
	for _, h := range []load.Handshake{{EIO: 3}, {EIO: 4}, {EIO: 4, AuthToken: true}, {Protocol: load.ProtocolPusher}} {
		t.Run(h.Label(), func(t *testing.T) { runDeliversEverything(t, h) })
	}
}

func runDeliversEverything(t *testing.T, h load.Handshake) {
	u := startJetsocket(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := load.Run(ctx, load.Target{
		Name: "jetsocket", URL: u, AppID: "bench", Key: "bench-key", Secret: appSecret,
		Token: minter(t), PID: os.Getpid(),
	}, load.Config{N: 30, Concurrency: 10, LatencyEvents: 4, BurstEvents: 6, Settle: 10 * time.Millisecond, Handshake: h})
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != 30 || res.Subscribed != 30 || res.ConnectFailures != 0 {
		t.Fatalf("connected %d, subscribed %d, failed %d: %v", res.Connected, res.Subscribed, res.ConnectFailures, res.ConnectErrors)
	}
	if res.Expected != 300 || res.Delivered != 300 || res.Duplicates != 0 || res.Lost() != 0 {
		t.Fatalf("delivered %d of %d (%d duplicates)", res.Delivered, res.Expected, res.Duplicates)
	}
	if res.TriggerFailures != 0 || res.Disconnected != 0 {
		t.Fatalf("%d trigger failures (%s), %d disconnected", res.TriggerFailures, res.TriggerFailureText, res.Disconnected)
	}
	if res.LatencyP50 <= 0 || res.LatencyMax < res.LatencyP99 || res.LatencyP99 < res.LatencyP50 || res.DeliveriesPerSec <= 0 || res.RSSIdle <= 0 {
		t.Fatalf("figures not measured: %+v", res)
	}
}

// A refused token is a counted connect failure, not a hang or a crash of the tool: a
// 401 for a query token, a CONNECT_ERROR invalid_token for one in auth.
func TestRunCountsRefusedConnections(t *testing.T) {
	for _, tc := range []struct {
		h    load.Handshake
		want string
	}{{load.Handshake{EIO: 3}, "HTTP 401"}, {load.Handshake{EIO: 4}, "HTTP 401"}, {load.Handshake{EIO: 4, AuthToken: true}, "invalid_token"}} {
		t.Run(tc.h.Label(), func(t *testing.T) {
			u := startJetsocket(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := load.Run(ctx, load.Target{
				Name: "jetsocket", URL: u, AppID: "bench", Key: "bench-key", Secret: appSecret,
				Token: func(int) (string, error) { return "not-a-token", nil },
			}, load.Config{N: 3, LatencyEvents: 1, Handshake: tc.h})
			if err == nil {
				t.Fatal("Run succeeded with no connection")
			}
			if res == nil || res.ConnectFailures != 3 || len(res.ConnectErrors) == 0 || !strings.Contains(res.ConnectErrors[0], tc.want) {
				t.Fatalf("want errors naming %q; result %+v", tc.want, res)
			}
		})
	}
}

// A wrong app secret is reported as trigger failures and lost deliveries.
func TestRunReportsRefusedTriggers(t *testing.T) {
	u := startJetsocket(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := load.Run(ctx, load.Target{
		Name: "jetsocket", URL: u, AppID: "bench", Key: "bench-key", Secret: "wrong-secret-0123456789",
		Token: minter(t),
	}, load.Config{N: 2, LatencyEvents: 2, EventTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.TriggerFailures != 2 || res.Lost() != 4 {
		t.Fatalf("trigger failures %d (%s), lost %d", res.TriggerFailures, res.TriggerFailureText, res.Lost())
	}
}

// The floor server (the benchmark's baseline) speaks enough of both generations for the
// tool: everything is delivered once. With v4 the floor pings every 20 ms and closes a
// connection whose pong is 200 ms late, so a client that did not answer pings would be
// disconnected during the settle and lose its deliveries.
func TestRunAgainstTheFloor(t *testing.T) {
	for _, h := range []load.Handshake{{EIO: 3}, {EIO: 4}, {EIO: 4, AuthToken: true}} {
		t.Run(h.Label(), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			served := make(chan error, 1)
			go func() {
				served <- floor.ServeWith(ctx, ln, floor.Options{PingInterval: 20 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
			}()
			res, err := load.Run(ctx, load.Target{
				Name: "floor", URL: &url.URL{Scheme: "http", Host: ln.Addr().String()}, AppID: "bench",
				Token: func(int) (string, error) { return "unchecked", nil },
			}, load.Config{N: 20, Concurrency: 5, LatencyEvents: 3, BurstEvents: 3, Settle: 600 * time.Millisecond, Handshake: h})
			if err != nil {
				t.Fatal(err)
			}
			if res.Client != h.Label() || res.Connected != 20 || res.Delivered != 120 || res.Lost() != 0 || res.Duplicates != 0 ||
				res.TriggerFailures != 0 || res.Disconnected != 0 {
				t.Fatalf("%s: connected %d, delivered %d of %d, %d duplicates, %d disconnected, %d trigger failures (%s)",
					res.Client, res.Connected, res.Delivered, res.Expected, res.Duplicates, res.Disconnected, res.TriggerFailures, res.TriggerFailureText)
			}
			cancel()
			if err := <-served; err != nil {
				t.Fatalf("floor: %v", err)
			}
		})
	}
}

// A v4 CONNECT_ERROR is a counted connect failure with the server's message, for a
// token in the query and in auth alike.
func TestRunCountsV4ConnectErrors(t *testing.T) {
	for _, h := range []load.Handshake{{EIO: 4}, {EIO: 4, AuthToken: true}} {
		t.Run(h.Label(), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			go func() { _ = floor.Serve(ctx, ln) }()
			res, err := load.Run(ctx, load.Target{
				Name: "floor", URL: &url.URL{Scheme: "http", Host: ln.Addr().String()}, AppID: "bench",
				Token: func(int) (string, error) { return "", nil }, // the floor refuses no token at all
			}, load.Config{N: 3, LatencyEvents: 1, Handshake: h})
			if err == nil {
				t.Fatal("Run succeeded with no connection")
			}
			if res == nil || res.ConnectFailures != 3 || len(res.ConnectErrors) == 0 || !strings.Contains(res.ConnectErrors[0], "invalid_token") {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

// A handshake no client makes is refused before anything is dialled.
func TestRunRefusesImpossibleHandshakes(t *testing.T) {
	for _, h := range []load.Handshake{{EIO: 5}, {EIO: 2}, {EIO: 3, AuthToken: true}} {
		_, err := load.Run(context.Background(), load.Target{
			Name: "nowhere", URL: &url.URL{Scheme: "http", Host: "127.0.0.1:1"},
			Token: func(int) (string, error) { return "t", nil },
		}, load.Config{N: 1, Handshake: h})
		if err == nil || !strings.Contains(err.Error(), "EIO") {
			t.Errorf("%+v: err %v, want a refusal naming EIO", h, err)
		}
	}
}

// Pusher clients answer the server's pusher:ping: with an activity timeout of 1 s and a
// pong timeout of 300 ms, a client that did not would be closed (4201) during the
// 2.5 s settle and lose its deliveries.
func TestRunPusherAnswersPings(t *testing.T) {
	u := startJetsocket(t, "PUSHER_ACTIVITY_TIMEOUT", "1s", "PUSHER_PONG_TIMEOUT", "300ms")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := load.Run(ctx, load.Target{
		Name: "jetsocket", URL: u, AppID: "bench", Key: "bench-key", Secret: appSecret, Token: minter(t),
	}, load.Config{N: 10, Concurrency: 5, LatencyEvents: 2, BurstEvents: 2, Settle: 2500 * time.Millisecond, Handshake: load.Handshake{Protocol: load.ProtocolPusher}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Client != "pusher" || res.Disconnected != 0 || res.Delivered != 40 || res.Lost() != 0 {
		t.Fatalf("%s: %d disconnected, delivered %d of %d", res.Client, res.Disconnected, res.Delivered, res.Expected)
	}
}

// A Pusher client with an unknown app key is a counted connect failure naming the
// server's refusal (pusher:error 4001), not a hang.
func TestRunPusherCountsUnknownKey(t *testing.T) {
	u := startJetsocket(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := load.Run(ctx, load.Target{
		Name: "jetsocket", URL: u, AppID: "bench", Key: "not-the-key", Secret: appSecret, Token: minter(t),
	}, load.Config{N: 3, LatencyEvents: 1, Handshake: load.Handshake{Protocol: load.ProtocolPusher}})
	if err == nil {
		t.Fatal("Run succeeded with no connection")
	}
	if res == nil || res.ConnectFailures != 3 || len(res.ConnectErrors) == 0 || !strings.Contains(res.ConnectErrors[0], "4001") {
		t.Fatalf("result %+v", res)
	}
}
