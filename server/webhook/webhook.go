// Package webhook sends Jetsocket's signed webhooks, and verifies them for receivers.
//
// A POST body is {time_ms, events:[...]}, with headers X-Jetsocket-Key (the app key) and
// X-Jetsocket-Signature (hex HMAC-SHA256 of the raw body keyed with the app secret).
// Events are batched over a short window, queued in bounded memory and sent off the
// message path, each receiver by its own worker; a non-2xx answer is retried with
// exponential backoff for a bounded time.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
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
)

// Event is one webhook event, in Pusher's shape.
type Event struct {
	Name     string `json:"name"`
	Channel  string `json:"channel"`
	UserID   string `json:"user_id,omitempty"`
	Event    string `json:"event,omitempty"`     // client_event: the client event's name
	Data     string `json:"data,omitempty"`      // client_event: the event's data as a JSON string
	SocketID string `json:"socket_id,omitempty"` // client_event: the sender
}

// Payload is a webhook request body.
type Payload struct {
	TimeMS int64   `json:"time_ms"`
	Events []Event `json:"events"`
}

// Options configure a Sender. URLs, Key and Secret are required.
type Options struct {
	URLs   []string
	Key    string
	Secret string

	Window       time.Duration // how long events gather before a POST; default 100ms
	MaxBatch     int           // events per POST at most; default 100
	QueueSize    int           // events waiting to be batched; default 10,000
	Backlog      int           // batches waiting per receiver; default 100
	RetryFor     time.Duration // how long a batch is retried; default 2m
	FirstBackoff time.Duration // default 500ms, doubling, with jitter
	MaxBackoff   time.Duration // default 30s
	Client       *http.Client  // default: 10s timeout

	Logger *slog.Logger
	// OnDelivery is told each POST's outcome: "ok", "retry", "failed" (gave up) or
	// "dropped" (the receiver's backlog was full). OnQueueFull is told of each event
	// dropped because the queue was full. Both may be nil.
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

type worker struct {
	url     string
	name    string // url for logs: credentials and query values redacted
	batches chan []byte
}

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
		w := &worker{url: u, name: redact.URL(u), batches: make(chan []byte, o.Backlog)}
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

// Close sends what is queued and waits for the receivers, at most until ctx is done;
// retries still pending then are abandoned.
func (s *Sender) Close(ctx context.Context) error {
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
		return nil
	case <-ctx.Done():
		s.stop()
		<-all
		return fmt.Errorf("webhook: close: %w", ctx.Err())
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
	var batch []Event
	var timer <-chan time.Time
	flush := func() {
		if len(batch) > 0 {
			s.dispatch(batch)
		}
		batch, timer = nil, nil
	}
	for {
		select {
		case ev, ok := <-s.queue:
			if !ok {
				flush()
				return
			}
			batch = append(batch, ev)
			if len(batch) == 1 {
				timer = time.After(s.o.Window)
			}
			if len(batch) >= s.o.MaxBatch {
				flush()
			}
		case <-timer:
			flush()
		}
	}
}

func (s *Sender) dispatch(events []Event) {
	body, err := json.Marshal(Payload{TimeMS: time.Now().UnixMilli(), Events: events})
	if err != nil {
		s.o.Logger.Error("webhook: encode", "err", err)
		return
	}
	for _, w := range s.workers {
		select {
		case w.batches <- body:
		default:
			s.o.OnDelivery("dropped")
			s.o.Logger.Warn("webhook backlog full: batch dropped", "url", w.name, "events", len(events))
		}
	}
}

func (s *Sender) work(w *worker) {
	defer s.wg.Done()
	for body := range w.batches {
		s.deliver(w, body)
	}
}

// deliver POSTs body until a 2xx answer or RetryFor has passed.
func (s *Sender) deliver(w *worker, body []byte) {
	start := time.Now()
	backoff := s.o.FirstBackoff
	for attempt := 1; ; attempt++ {
		err := s.post(w.url, body)
		if err == nil {
			s.o.OnDelivery("ok")
			return
		}
		wait := backoff/2 + rand.N(backoff/2+1) // jitter keeps many nodes from retrying in step
		if time.Since(start)+wait > s.o.RetryFor || s.ctx.Err() != nil {
			s.o.OnDelivery("failed")
			s.o.Logger.Error("webhook delivery failed", "url", w.name, "attempts", attempt, "err", redact.Error(err))
			return
		}
		s.o.OnDelivery("retry")
		s.o.Logger.Warn("webhook delivery will be retried", "url", w.name, "attempt", attempt, "in", wait.String(), "err", redact.Error(err))
		select {
		case <-time.After(wait):
		case <-s.ctx.Done():
			s.o.OnDelivery("failed")
			return
		}
		backoff = min(backoff*2, s.o.MaxBackoff)
	}
}

func (s *Sender) post(url string, body []byte) error {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderKey, s.o.Key)
	req.Header.Set(HeaderSignature, Sign(body, s.o.Secret))
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
