// Package webhook sends Jetsocket's signed webhooks, and verifies them for receivers.
//
// A POST body is {time_ms, events:[...]}, with headers X-Jetsocket-Key (the app key) and
// X-Jetsocket-Signature (hex HMAC-SHA256 of the raw body keyed with the app secret).
// Events are batched over a short window, queued in bounded memory and sent off the
// message path, each receiver by its own worker; a non-2xx answer is retried with
// exponential backoff for a bounded time. A receiver's backlog is bounded in batches
// and in age, so a slow receiver falls behind by a minute at most; what is dropped is
// counted and logged, and so is what a shutdown leaves undelivered.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/jetsocket/jetsocket/server/redact"
)

// Headers of a webhook request.
const (
	HeaderKey       = "X-Jetsocket-Key"
	HeaderSignature = "X-Jetsocket-Signature"
)

// Event names.
const (
	ChannelOccupied = "channel_occupied"
	ChannelVacated  = "channel_vacated"
	MemberAdded     = "member_added"
	MemberRemoved   = "member_removed"
	ClientEvent     = "client_event"
	// SubscriptionCount carries a channel's new count (SUBSCRIPTION_COUNT), coalesced
	// per channel like the event its subscribers get.
	SubscriptionCount = "subscription_count"
	// CacheMiss: a cache channel's subscriber found no last event; coalesced per
	// channel by Coalesce.
	CacheMiss = "cache_miss"
)

// Event is one webhook event, in Pusher's shape.
type Event struct {
	Name     string `json:"name"`
	Channel  string `json:"channel"`
	UserID   string `json:"user_id,omitempty"`
	Event    string `json:"event,omitempty"`     // client_event: the client event's name
	Data     string `json:"data,omitempty"`      // client_event: the event's data as a JSON string
	SocketID string `json:"socket_id,omitempty"` // client_event: the sender
	// SubscriptionCount is set on subscription_count events (a pointer: 0 is a count).
	SubscriptionCount *int `json:"subscription_count,omitempty"`
}

// Payload is a webhook request body.
type Payload struct {
	TimeMS int64   `json:"time_ms"`
	Events []Event `json:"events"`
}

// HeaderID names a batch; a retry of the batch carries the same id, so a receiver that
// answered too late (and so gets the batch again) can tell it has seen it.
const HeaderID = "X-Jetsocket-Webhook-Id"

// Options configure a Sender. URLs, Key and Secret are required.
type Options struct {
	URLs   []string
	Key    string
	Secret string

	Window       time.Duration // how long events gather before a POST; default 100ms
	MaxBatch     int           // events per POST at most; default 100
	QueueSize    int           // events waiting to be batched; default 10,000
	Backlog      int           // batches waiting per receiver; default 100
	MaxAge       time.Duration // a batch older than this is dropped, waiting or between retries; default 1m
	RetryFor     time.Duration // how long a batch is retried; default 2m (MaxAge applies as well)
	FirstBackoff time.Duration // default 500ms, doubling, with jitter
	MaxBackoff   time.Duration // default 30s
	Client       *http.Client  // default: 10s timeout

	Logger *slog.Logger
	// OnDelivery is told each batch's outcome per receiver: "ok", "retry" (a failed
	// POST that will be retried), "failed" (gave up), "dropped" (the oldest batch,
	// pushed out of a full backlog), "expired" (older than MaxAge) or "abandoned"
	// (pending at shutdown). OnQueueFull is told of each event dropped because the
	// queue was full. Both may be nil.
	OnDelivery  func(outcome string)
	OnQueueFull func()
}

// Sender batches and delivers webhooks. Send never blocks.
type Sender struct {
	o       Options
	queue   chan Event
	workers []*worker
	done    chan struct{}
	wg      sync.WaitGroup
	stop    context.CancelFunc
	ctx     context.Context

	mu      sync.RWMutex // guards closed against Send racing Close
	closed  bool
	logMu   sync.Mutex
	dropLog time.Time
}

// batch is one POST body, as queued for each receiver.
type batch struct {
	id      string
	body    []byte
	events  int
	created time.Time
}

// worker delivers to one receiver, in order.
type worker struct {
	url     string
	name    string // url for logs: credentials and query values redacted
	batches chan batch

	mu       sync.Mutex // the drop tallies below, logged at most every dropLogEvery
	lastLog  time.Time
	tally    map[string]int // batches per outcome since the last log line
	tallyEvs map[string]int // their events
}

// dropLogEvery bounds the log lines a receiver that keeps falling behind causes.
const dropLogEvery = 10 * time.Second

// New starts a Sender.
func New(o Options) (*Sender, error) {
	if len(o.URLs) == 0 || o.Secret == "" {
		return nil, errors.New("webhook: URLs and Secret are required")
	}
	if o.Window <= 0 {
		o.Window = 100 * time.Millisecond
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 100
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 10_000
	}
	if o.Backlog <= 0 {
		o.Backlog = 100
	}
	if o.MaxAge <= 0 {
		o.MaxAge = time.Minute
	}
	if o.RetryFor <= 0 {
		o.RetryFor = 2 * time.Minute
	}
	if o.FirstBackoff <= 0 {
		o.FirstBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OnDelivery == nil {
		o.OnDelivery = func(string) {}
	}
	if o.OnQueueFull == nil {
		o.OnQueueFull = func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sender{o: o, queue: make(chan Event, o.QueueSize), done: make(chan struct{}), ctx: ctx, stop: cancel}
	for _, u := range o.URLs {
		w := &worker{url: u, name: redact.URL(u), batches: make(chan batch, o.Backlog), tally: map[string]int{}, tallyEvs: map[string]int{}}
		s.workers = append(s.workers, w)
		s.wg.Add(1)
		go s.work(w)
	}
	go s.collect()
	return s, nil
}

// Send queues ev. When the queue is full the event is dropped, counted and logged.
func (s *Sender) Send(ev Event) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return
	}
	select {
	case s.queue <- ev:
	default:
		s.o.OnQueueFull()
		s.logMu.Lock()
		if time.Since(s.dropLog) > 10*time.Second {
			s.dropLog = time.Now()
			s.o.Logger.Warn("webhook queue full: events dropped", "queue", s.o.QueueSize)
		}
		s.logMu.Unlock()
	}
}

// Close sends what is queued and waits for the receivers, at most until ctx is done.
// What is still pending then (batches waiting, in flight or between retries) is
// abandoned, counted and logged: a slow receiver does not fail the shutdown.
func (s *Sender) Close(ctx context.Context) {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
	s.mu.Unlock()
	all := make(chan struct{})
	go func() {
		<-s.done
		s.wg.Wait()
		close(all)
	}()
	select {
	case <-all:
	case <-ctx.Done():
		s.stop() // ends POSTs and retry waits; the workers abandon the rest
		<-all
	}
	for _, w := range s.workers {
		w.flushTally(s.o.Logger, true)
	}
}

// collect gathers events into batches: a batch goes out Window after its first event,
// or as soon as it holds MaxBatch events.
func (s *Sender) collect() {
	defer func() {
		for _, w := range s.workers {
			close(w.batches)
		}
		close(s.done)
	}()
	var events []Event
	var timer <-chan time.Time
	flush := func() {
		if len(events) > 0 {
			s.dispatch(events)
		}
		events, timer = nil, nil
	}
	for {
		select {
		case ev, ok := <-s.queue:
			if !ok {
				flush()
				return
			}
			events = append(events, ev)
			if len(events) == 1 {
				timer = time.After(s.o.Window)
			}
			if len(events) >= s.o.MaxBatch {
				flush()
			}
		case <-timer:
			flush()
		}
	}
}

// dispatch queues a batch for every receiver. A full backlog drops its oldest batch
// to make room: a receiver that fell behind gets the newest state, not the stalest.
func (s *Sender) dispatch(events []Event) {
	now := time.Now()
	body, err := json.Marshal(Payload{TimeMS: now.UnixMilli(), Events: events})
	if err != nil {
		s.o.Logger.Error("webhook: encode", "err", err)
		return
	}
	b := batch{id: newBatchID(), body: body, events: len(events), created: now}
	for _, w := range s.workers {
		for {
			select {
			case w.batches <- b:
			default:
				// collect is the only sender, so once the oldest is out there is room,
				// unless the worker took one meanwhile (then there is room too).
				select {
				case old := <-w.batches:
					s.drop(w, old, "dropped")
				default:
				}
				continue
			}
			break
		}
	}
}

func (s *Sender) work(w *worker) {
	defer s.wg.Done()
	for b := range w.batches {
		switch {
		case s.ctx.Err() != nil:
			s.drop(w, b, "abandoned")
		case time.Since(b.created) > s.o.MaxAge:
			s.drop(w, b, "expired")
		default:
			s.deliver(w, b)
		}
	}
}

// drop counts a batch that will not be delivered, and logs the tally now and then.
func (s *Sender) drop(w *worker, b batch, outcome string) {
	s.o.OnDelivery(outcome)
	w.mu.Lock()
	w.tally[outcome]++
	w.tallyEvs[outcome] += b.events
	w.mu.Unlock()
	if outcome != "abandoned" { // Close logs those once, in one line
		w.flushTally(s.o.Logger, false)
	}
}

// flushTally logs what was dropped since the last line, at most every dropLogEvery
// unless now.
func (w *worker) flushTally(log *slog.Logger, now bool) {
	w.mu.Lock()
	if len(w.tally) == 0 || (!now && time.Since(w.lastLog) < dropLogEvery) {
		w.mu.Unlock()
		return
	}
	tally, evs := w.tally, w.tallyEvs
	w.tally, w.tallyEvs, w.lastLog = map[string]int{}, map[string]int{}, time.Now()
	w.mu.Unlock()
	for _, outcome := range []string{"dropped", "expired", "abandoned"} {
		if n := tally[outcome]; n > 0 {
			log.Warn("webhook batches not delivered", "url", w.name, "outcome", outcome, "batches", n, "events", evs[outcome], "why", dropReasons[outcome])
		}
	}
}

var dropReasons = map[string]string{
	"dropped":   "the receiver's backlog was full: the oldest batches made room",
	"expired":   "older than the webhook age limit: the receiver fell behind",
	"abandoned": "still pending when the shutdown budget ran out",
}

// deliver POSTs b until a 2xx answer, RetryFor has passed or b is older than MaxAge.
func (s *Sender) deliver(w *worker, b batch) {
	start := time.Now()
	backoff := s.o.FirstBackoff
	for attempt := 1; ; attempt++ {
		err := s.post(w.url, b)
		if err == nil {
			s.o.OnDelivery("ok")
			return
		}
		if s.ctx.Err() != nil {
			s.drop(w, b, "abandoned")
			return
		}
		wait := backoff/2 + rand.N(backoff/2+1) // jitter keeps many nodes from retrying in step
		if time.Since(start)+wait > s.o.RetryFor || time.Since(b.created)+wait > s.o.MaxAge {
			s.o.OnDelivery("failed")
			s.o.Logger.Error("webhook delivery failed", "url", w.name, "attempts", attempt, "err", redact.Error(err))
			return
		}
		s.o.OnDelivery("retry")
		s.o.Logger.Warn("webhook delivery will be retried", "url", w.name, "attempt", attempt, "in", wait.String(), "err", redact.Error(err))
		select {
		case <-time.After(wait):
		case <-s.ctx.Done():
			s.drop(w, b, "abandoned")
			return
		}
		backoff = min(backoff*2, s.o.MaxBackoff)
	}
}

func newBatchID() string {
	var b [12]byte
	_, _ = crand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

func (s *Sender) post(url string, b batch) error {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(b.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderKey, s.o.Key)
	req.Header.Set(HeaderSignature, Sign(b.body, s.o.Secret))
	req.Header.Set(HeaderID, b.id)
	res, err := s.o.Client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("answered %d", res.StatusCode)
	}
	return nil
}

// Sign is the hex HMAC-SHA256 of body keyed with secret.
func Sign(body []byte, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// ErrSignature is returned by Verify for a missing or wrong signature or key.
var ErrSignature = errors.New("webhook: invalid signature")

// MaxBodyBytes bounds the body Verify reads.
const MaxBodyBytes = 4 << 20

// Verify checks a webhook request (for receivers): the key header must equal key when key
// is not empty, and the signature must match the body. It returns the decoded payload.
func Verify(r *http.Request, key, secret string) (*Payload, error) {
	if key != "" && !hmac.Equal([]byte(r.Header.Get(HeaderKey)), []byte(key)) {
		return nil, ErrSignature
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("webhook: read body: %w", err)
	}
	if len(body) > MaxBodyBytes {
		return nil, errors.New("webhook: body too large")
	}
	want := Sign(body, secret)
	if !hmac.Equal([]byte(r.Header.Get(HeaderSignature)), []byte(want)) {
		return nil, ErrSignature
	}
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("webhook: body: %w", err)
	}
	return &p, nil
}
