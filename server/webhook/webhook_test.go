package webhook

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const secret = "webhook-secret-0123456789"

type receiver struct {
	mu       sync.Mutex
	payloads []*Payload
	failures atomic.Int32 // answer 500 this many times first
	bad      atomic.Int32
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := Verify(r, "app-key", secret)
	if err != nil {
		rc.bad.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if rc.failures.Add(-1) >= 0 {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	rc.mu.Lock()
	rc.payloads = append(rc.payloads, p)
	rc.mu.Unlock()
}

func (rc *receiver) events() []Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []Event
	for _, p := range rc.payloads {
		out = append(out, p.Events...)
	}
	return out
}

func TestBatchesSignsAndRetries(t *testing.T) {
	rc := &receiver{}
	rc.failures.Store(2)
	srv := httptest.NewServer(rc)
	defer srv.Close()
	var outcomes sync.Map
	s, err := New(Options{
		URLs: []string{srv.URL}, Key: "app-key", Secret: secret,
		Window: 20 * time.Millisecond, FirstBackoff: 10 * time.Millisecond,
		OnDelivery: func(o string) { n, _ := outcomes.LoadOrStore(o, new(atomic.Int32)); n.(*atomic.Int32).Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Send(Event{Name: ChannelOccupied, Channel: "presence-a"})
	s.Send(Event{Name: MemberAdded, Channel: "presence-a", UserID: "1"})
	s.Close(context.Background())
	evs := rc.events()
	if len(evs) != 2 || evs[0].Name != ChannelOccupied || evs[1].UserID != "1" {
		t.Fatalf("received %+v", evs)
	}
	rc.mu.Lock()
	if len(rc.payloads) != 1 || rc.payloads[0].TimeMS == 0 {
		t.Fatalf("want one batch with time_ms, got %d", len(rc.payloads))
	}
	rc.mu.Unlock()
	if n, _ := outcomes.Load("retry"); n == nil || n.(*atomic.Int32).Load() != 2 {
		t.Fatal("two failures were not retried")
	}
	if rc.bad.Load() != 0 {
		t.Fatal("signature refused by Verify")
	}
}

func TestGivesUpAfterRetryFor(t *testing.T) {
	rc := &receiver{}
	rc.failures.Store(1 << 30)
	srv := httptest.NewServer(rc)
	defer srv.Close()
	failed := make(chan struct{}, 1)
	s, _ := New(Options{
		URLs: []string{srv.URL}, Key: "app-key", Secret: secret, Window: time.Millisecond,
		FirstBackoff: 5 * time.Millisecond, RetryFor: 100 * time.Millisecond,
		OnDelivery: func(o string) {
			if o == "failed" {
				failed <- struct{}{}
			}
		},
	})
	s.Send(Event{Name: ChannelVacated, Channel: "x"})
	select {
	case <-failed:
	case <-time.After(5 * time.Second):
		t.Fatal("never gave up")
	}
	s.Close(context.Background())
}

func TestQueueFullDropsWithoutBlocking(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	// Every event is either dropped at the full queue (OnQueueFull) or, once batched,
	// pushed out of the full backlog (OnDelivery "dropped"; one event per batch here). Which of the
	// two depends on how fast the collector drains the queue, so the test counts both:
	// at most the POST in flight, the backlog and the queue keep events.
	var dropped atomic.Int32
	s, _ := New(Options{URLs: []string{srv.URL}, Secret: secret, QueueSize: 10, Backlog: 1, Window: time.Hour, MaxBatch: 1,
		OnQueueFull: func() { dropped.Add(1) },
		OnDelivery: func(outcome string) {
			if outcome == "dropped" {
				dropped.Add(1)
			}
		}})
	done := make(chan struct{})
	go func() {
		for range 1000 {
			s.Send(Event{Name: ClientEvent, Channel: "c"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Send blocked")
	}
	const kept = 1 + 1 + 10 // in flight, backlog, queue
	deadline := time.Now().Add(5 * time.Second)
	for dropped.Load() < 1000-kept && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := dropped.Load(); n < 1000-kept || n > 1000 {
		t.Fatalf("dropped %d of 1000 with a queue of 10 and a backlog of 1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	s.Close(ctx)
	s.Send(Event{Name: ClientEvent}) // after Close: ignored, no panic
}

func TestVerifyRefuses(t *testing.T) {
	body := `{"time_ms":1,"events":[]}`
	req := func(sig, key string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set(HeaderSignature, sig)
		r.Header.Set(HeaderKey, key)
		return r
	}
	if _, err := Verify(req(Sign([]byte(body), secret), "k"), "k", secret); err != nil {
		t.Fatalf("good: %v", err)
	}
	for name, r := range map[string]*http.Request{
		"wrong secret": req(Sign([]byte(body), "other"), "k"),
		"no signature": req("", "k"),
		"wrong key":    req(Sign([]byte(body), secret), "x"),
		"tampered":     req(Sign([]byte(body+" "), secret), "k"),
	} {
		if _, err := Verify(r, "k", secret); err != ErrSignature {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// syncBuffer is a log sink safe for the workers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Receiver URLs may carry credentials; the log lines that name them (retries, give-ups,
// dial errors that net/http words with the URL) must not.
func TestLogsRedactReceiverURLs(t *testing.T) {
	rc := &receiver{}
	rc.failures.Store(1 << 30)
	srv := httptest.NewServer(rc)
	defer srv.Close()
	answering := strings.Replace(srv.URL, "http://", "http://hook-user:pw-secret-1@", 1) + "/hook?token=tok-secret-1"
	unreachable := "http://hook-user:pw-secret-2@127.0.0.1:1/hook?token=tok-secret-2&sig=sig-secret-3"
	logs := &syncBuffer{}
	var failed atomic.Int32
	s, err := New(Options{
		URLs: []string{answering, unreachable}, Key: "app-key", Secret: secret, Window: time.Millisecond,
		FirstBackoff: 5 * time.Millisecond, RetryFor: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		OnDelivery: func(o string) {
			if o == "failed" {
				failed.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Send(Event{Name: ChannelVacated, Channel: "x"})
	deadline := time.Now().Add(10 * time.Second)
	for failed.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	s.Close(context.Background())
	out := logs.String()
	if failed.Load() < 2 || !strings.Contains(out, "will be retried") || !strings.Contains(out, "delivery failed") {
		t.Fatalf("premise: both receivers should have failed and logged:\n%s", out)
	}
	for _, secret := range []string{"pw-secret", "tok-secret", "sig-secret", "hook-user"} {
		if strings.Contains(out, secret) {
			t.Fatalf("%q reached the logs:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "127.0.0.1:1/hook?sig=REDACTED&token=REDACTED") {
		t.Fatalf("the logs no longer tell which receiver failed:\n%s", out)
	}
}

// gate is a receiver that records each request and holds it until released.
type gate struct {
	arrived chan string // the event names of each request, as it arrives
	release chan struct{}
	ids     chan string
}

func newGate() *gate {
	return &gate{arrived: make(chan string, 100), release: make(chan struct{}, 100), ids: make(chan string, 100)}
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := Verify(r, "", secret)
	if err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var names []string
	for _, e := range p.Events {
		names = append(names, e.Channel)
	}
	g.ids <- r.Header.Get(HeaderID)
	g.arrived <- strings.Join(names, ",")
	select {
	case <-g.release:
	case <-r.Context().Done():
	}
}

func (g *gate) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-g.arrived:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no request arrived")
		return ""
	}
}

type outcomes struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomes) add(s string) { o.mu.Lock(); o.n[s]++; o.mu.Unlock() }
func (o *outcomes) get(s string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[s]
}

// A full backlog pushes out its oldest batch, counted as "dropped", so a receiver that
// falls behind gets the newest events.
func TestFullBacklogDropsTheOldest(t *testing.T) {
	g := newGate()
	srv := httptest.NewServer(g)
	defer srv.Close()
	out := &outcomes{n: map[string]int{}}
	s, _ := New(Options{URLs: []string{srv.URL}, Secret: secret, Backlog: 2, MaxBatch: 1, Window: time.Millisecond,
		MaxAge: time.Hour, OnDelivery: out.add})
	s.Send(Event{Name: ChannelOccupied, Channel: "a"})
	if got := g.next(t); got != "a" { // a is in flight: the backlog is empty
		t.Fatalf("first %q", got)
	}
	for _, ch := range []string{"b", "c", "d"} {
		s.Send(Event{Name: ChannelOccupied, Channel: ch})
	}
	deadline := time.Now().Add(5 * time.Second)
	for out.get("dropped") < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for range 3 {
		g.release <- struct{}{}
	}
	if got := g.next(t) + g.next(t); got != "cd" {
		t.Fatalf("after the oldest was dropped the receiver got %q, want c then d", got)
	}
	s.Close(context.Background())
	if out.get("dropped") != 1 || out.get("ok") != 3 {
		t.Fatalf("outcomes %v", out.n)
	}
}

// A batch that waited longer than MaxAge behind a slow receiver is dropped, counted as
// "expired" and logged, instead of reaching the receiver late.
func TestBacklogIsBoundedByAge(t *testing.T) {
	g := newGate()
	srv := httptest.NewServer(g)
	defer srv.Close()
	out := &outcomes{n: map[string]int{}}
	logs := &syncBuffer{}
	const maxAge = 100 * time.Millisecond
	s, _ := New(Options{URLs: []string{srv.URL}, Secret: secret, Backlog: 10, MaxBatch: 1, Window: time.Millisecond,
		MaxAge: maxAge, OnDelivery: out.add, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	s.Send(Event{Name: ChannelOccupied, Channel: "a"})
	if got := g.next(t); got != "a" {
		t.Fatalf("first %q", got)
	}
	s.Send(Event{Name: ChannelOccupied, Channel: "b"})
	s.Send(Event{Name: ChannelOccupied, Channel: "c"})
	time.Sleep(3 * maxAge) // b and c wait behind a: they grow too old
	g.release <- struct{}{}
	deadline := time.Now().Add(5 * time.Second)
	for out.get("expired") < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	s.Send(Event{Name: ChannelOccupied, Channel: "d"}) // fresh: delivered
	if got := g.next(t); got != "d" {
		t.Fatalf("after the expired ones the receiver got %q, want d", got)
	}
	g.release <- struct{}{}
	s.Close(context.Background())
	if out.get("expired") != 2 || out.get("ok") != 2 {
		t.Fatalf("outcomes %v", out.n)
	}
	if n := loggedBatches(logs.String(), "expired"); n != 2 {
		t.Fatalf("%d expired batches logged, want 2:\n%s", n, logs)
	}
}

// Close with a receiver that does not answer returns once its budget is spent (it was a
// failed shutdown, exit 1), and says what it abandoned.
func TestCloseAbandonsWhatTheBudgetDoesNotAllow(t *testing.T) {
	g := newGate()
	srv := httptest.NewServer(g)
	defer srv.Close()
	out := &outcomes{n: map[string]int{}}
	logs := &syncBuffer{}
	s, _ := New(Options{URLs: []string{srv.URL}, Secret: secret, MaxBatch: 1, Window: time.Millisecond,
		OnDelivery: out.add, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	s.Send(Event{Name: ChannelOccupied, Channel: "a"})
	g.next(t) // in flight, never answered
	s.Send(Event{Name: ChannelOccupied, Channel: "b"})
	s.Send(Event{Name: ChannelOccupied, Channel: "c"})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() { s.Close(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after its budget")
	}
	if out.get("abandoned") != 3 {
		t.Fatalf("outcomes %v, want 3 abandoned", out.n)
	}
	if !strings.Contains(logs.String(), "outcome=abandoned batches=3 events=3") {
		t.Fatalf("abandoned batches not logged:\n%s", logs)
	}
}

// A retried batch carries the id of its first attempt; batches differ.
func TestRetriesCarryTheBatchID(t *testing.T) {
	var mu sync.Mutex
	var ids []string
	fails := 2
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		ids = append(ids, r.Header.Get(HeaderID))
		if fails > 0 {
			fails--
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	s, _ := New(Options{URLs: []string{srv.URL}, Secret: secret, Window: time.Millisecond, FirstBackoff: time.Millisecond})
	s.Send(Event{Name: ChannelOccupied, Channel: "a"})
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(ids)
		mu.Unlock()
		if n == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.Send(Event{Name: ChannelOccupied, Channel: "b"})
	s.Close(context.Background())
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != 4 || ids[0] == "" || ids[1] != ids[0] || ids[2] != ids[0] || ids[3] == ids[0] || ids[3] == "" {
		t.Fatalf("ids %q: want three equal (one batch, two retries) and a different fourth", ids)
	}
}

var notDelivered = regexp.MustCompile(`msg="webhook batches not delivered" .*outcome=(\w+) batches=(\d+) events=(\d+)`)

// loggedBatches sums the batches the log lines report for outcome.
func loggedBatches(logs, outcome string) int {
	n := 0
	for _, m := range notDelivered.FindAllStringSubmatch(logs, -1) {
		if m[1] == outcome {
			k, _ := strconv.Atoi(m[2])
			n += k
		}
	}
	return n
}
