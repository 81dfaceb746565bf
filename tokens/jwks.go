package tokens

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// Defaults for KeySetOptions.
const (
	// Providers rotate keys rarely and publish the next one well before using it; the
	// unknown-kid refresh covers the rest.
	DefaultJWKSRefresh = time.Hour
	// One fetch a minute at most however many unknown kids arrive: a flood of random
	// kids cannot turn into a flood of requests to the provider.
	DefaultJWKSUnknownKID = time.Minute
	defaultJWKSTimeout    = 10 * time.Second
	// Retries while the provider is unreachable start at 1s and back off to this.
	maxJWKSRetry = time.Minute
	// minRSABits refuses provider keys too short to trust.
	minRSABits = 2048
	// MaxJWKSBytes bounds a key set answer: real ones are a few KiB; a provider (or
	// whoever answers for it) must not be able to make us read without end.
	MaxJWKSBytes = 1 << 20
	// maxJWKSRedirects bounds the same-origin redirects a fetch follows.
	maxJWKSRedirects = 3
)

// asymmetricAlgs are the algorithms accepted for tokens verified with a JWKS key.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"}

// KeySetOptions configure a KeySet.
type KeySetOptions struct {
	URL string
	// Refresh is the background refresh interval (DefaultJWKSRefresh when zero).
	Refresh time.Duration
	// UnknownKID is the least time between refreshes caused by a token whose kid is not
	// cached (DefaultJWKSUnknownKID when zero).
	UnknownKID time.Duration
	// Timeout bounds one fetch (10s when zero).
	Timeout time.Duration
	// Client fetches the key set; http.DefaultClient's transport when nil.
	Client *http.Client
	// OnFetch, if set, is told the outcome of every fetch and the number of keys held.
	OnFetch func(err error, keys int)
	Log     *slog.Logger
}

// KeySet holds an identity provider's public keys from its JWKS URL: fetched at start,
// refreshed in the background and on an unknown kid (rate-limited), the cached keys kept
// when a refresh fails. Parsing the keys and picking one for a token is left to
// MicahParks/jwkset and keyfunc; the fetch schedule is ours so that readiness can follow
// the first successful fetch and retries come sooner than the refresh interval.
type KeySet struct {
	o       KeySetOptions
	store   *jwkset.MemoryJWKSet
	kf      keyfunc.Keyfunc
	unknown *rate.Limiter
	loaded  atomic.Bool
	cancel  context.CancelFunc
	done    chan struct{}

	mu       sync.Mutex
	inflight chan struct{} // closed when the unknown-kid fetch under way ends
}

// NewKeySet checks o, fetches the keys once (a failure is logged, not returned: the
// server starts and reports not ready until a fetch succeeds) and starts the background
// refresh, which Close stops.
func NewKeySet(o KeySetOptions) (*KeySet, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tokens: JWKS URL %q is not an http(s) URL", o.URL)
	}
	if o.Refresh <= 0 {
		o.Refresh = DefaultJWKSRefresh
	}
	if o.UnknownKID <= 0 {
		o.UnknownKID = DefaultJWKSUnknownKID
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultJWKSTimeout
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	o.Client = guardedClient(o.Client, u)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	k := &KeySet{
		o:       o,
		store:   jwkset.NewMemoryStorage(),
		unknown: rate.NewLimiter(rate.Every(o.UnknownKID), 1),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	k.kf, err = keyfunc.New(keyfunc.Options{
		Ctx:     ctx,
		Storage: refreshingStore{k.store, k},
		// Keys published for encryption ("use":"enc", as Keycloak does) never verify.
		UseWhitelist: []jwkset.USE{jwkset.UseSig, ""},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("tokens: JWKS: %w", err)
	}
	err = k.Refresh(ctx)
	go k.loop(ctx, err)
	return k, nil
}

// Close stops the background refresh.
func (k *KeySet) Close() {
	k.cancel()
	<-k.done
}

// Ready is nil once keys have been loaded.
func (k *KeySet) Ready() error {
	if !k.loaded.Load() {
		return errors.New("identity provider keys (JWKS_URL) not loaded yet")
	}
	return nil
}

// Refresh fetches the key set now. On failure the cached keys stay.
func (k *KeySet) Refresh(ctx context.Context) error {
	err := k.fetch(ctx)
	n := 0
	if all, rerr := k.store.KeyReadAll(ctx); rerr == nil {
		n = len(all)
	}
	if err != nil {
		// The URL may carry credentials: log its host only.
		host := ""
		if u, perr := url.Parse(k.o.URL); perr == nil {
			host = u.Host
		}
		k.o.Log.Error("JWKS refresh failed, keeping the cached keys", "host", host, "cached_keys", n, "err", err)
	} else {
		k.loaded.Store(true)
		k.o.Log.Debug("JWKS refreshed", "keys", n)
	}
	if k.o.OnFetch != nil {
		k.o.OnFetch(err, n)
	}
	return err
}

func (k *KeySet) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, k.o.Timeout)
	defer cancel()
	// With no RefreshInterval, jwkset's HTTP storage fetches and parses once, into a
	// scratch store: the live keys change only on a complete, non-empty answer.
	scratch := jwkset.NewMemoryStorage()
	_, err := jwkset.NewStorageFromHTTP(k.o.URL, jwkset.HTTPClientStorageOptions{
		Client: k.o.Client, Ctx: ctx, HTTPTimeout: k.o.Timeout, Storage: scratch,
	})
	if err != nil {
		return scrubURL(err)
	}
	keys, err := scratch.KeyReadAll(ctx)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return errors.New("the key set holds no usable key")
	}
	return k.store.KeyReplaceAll(ctx, keys)
}

// errJWKSTooLarge is the fetch error of an answer over MaxJWKSBytes.
var errJWKSTooLarge = fmt.Errorf("the key set answer is larger than %d bytes", MaxJWKSBytes)

// guardedClient is c fetching origin's key set: it follows a redirect only to the same
// scheme and host (an https JWKS_URL redirected to http, or to another host, would let
// whoever answers there choose the keys tokens are verified with), at most a few times,
// and reads at most MaxJWKSBytes of an answer.
func guardedClient(c *http.Client, origin *url.URL) *http.Client {
	g := *c
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	g.Transport = limitedTransport{base}
	g.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > maxJWKSRedirects {
			return fmt.Errorf("more than %d redirects", maxJWKSRedirects)
		}
		if req.URL.Scheme != origin.Scheme || req.URL.Host != origin.Host {
			return fmt.Errorf("redirect from %s://%s to %s://%s refused: a key set is only fetched from JWKS_URL's scheme and host",
				origin.Scheme, origin.Host, req.URL.Scheme, req.URL.Host)
		}
		if c.CheckRedirect != nil {
			return c.CheckRedirect(req, via)
		}
		return nil
	}
	return &g
}

// limitedTransport refuses an answer that says it is over MaxJWKSBytes and cuts one
// that turns out to be.
type limitedTransport struct{ base http.RoundTripper }

func (t limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > MaxJWKSBytes {
		_ = resp.Body.Close()
		return nil, errJWKSTooLarge
	}
	resp.Body = &limitedBody{rc: resp.Body, left: MaxJWKSBytes}
	return resp, nil
}

// limitedBody reads at most left bytes of rc; a byte more is errJWKSTooLarge, so that a
// JSON decoder fails instead of reading on (or parsing a truncated prefix).
type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, errJWKSTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// scrubURL drops the URL (which may carry credentials) from an HTTP client error.
func scrubURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("fetch: %w", ue.Err)
	}
	return err
}

// loop refreshes every o.Refresh; after a failure it retries sooner, backing off.
func (k *KeySet) loop(ctx context.Context, last error) {
	defer close(k.done)
	retry := time.Second
	for {
		wait := k.o.Refresh
		if last != nil {
			wait = min(retry, k.o.Refresh)
			retry = min(2*retry, maxJWKSRetry)
		} else {
			retry = time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		last = k.Refresh(ctx)
	}
}

// refreshUnknown refreshes for a kid not in the cache, at most once per o.UnknownKID;
// callers arriving while that fetch runs wait for it instead of starting another. It
// reports whether the keys may have changed.
func (k *KeySet) refreshUnknown(ctx context.Context) bool {
	k.mu.Lock()
	if ch := k.inflight; ch != nil {
		k.mu.Unlock()
		select {
		case <-ch:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if !k.unknown.Allow() {
		k.mu.Unlock()
		return false
	}
	ch := make(chan struct{})
	k.inflight = ch
	k.mu.Unlock()
	err := k.Refresh(ctx)
	k.mu.Lock()
	k.inflight = nil
	k.mu.Unlock()
	close(ch)
	return err == nil
}

// refreshingStore is the key store keyfunc reads, refreshing on an unknown kid.
type refreshingStore struct {
	*jwkset.MemoryJWKSet
	ks *KeySet
}

func (s refreshingStore) KeyRead(ctx context.Context, kid string) (jwkset.JWK, error) {
	jwk, err := s.MemoryJWKSet.KeyRead(ctx, kid)
	if !errors.Is(err, jwkset.ErrKeyNotFound) || !s.ks.refreshUnknown(ctx) {
		return jwk, err
	}
	return s.MemoryJWKSet.KeyRead(ctx, kid)
}

var errUnknownKey = errors.New("no key with this kid")

// key is the jwt.Keyfunc for tokens signed with a provider key: the key the kid names
// (or, without a kid, every key) and only when its type fits the token's algorithm, so
// no key is ever used with an algorithm of another family.
func (k *KeySet) key(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	got, err := k.kf.Keyfunc(t)
	switch {
	case errors.Is(err, jwkset.ErrKeyNotFound):
		return nil, errUnknownKey
	case err != nil:
		return nil, fmt.Errorf("%w: %w", errAlgorithm, err)
	}
	if set, ok := got.(jwt.VerificationKeySet); ok {
		var fit []jwt.VerificationKey
		for _, key := range set.Keys {
			if keyFits(alg, key) {
				fit = append(fit, key)
			}
		}
		if len(fit) == 0 {
			return nil, errUnknownKey
		}
		return jwt.VerificationKeySet{Keys: fit}, nil
	}
	if !keyFits(alg, got) {
		return nil, fmt.Errorf("%w: a %T key cannot verify %s", errAlgorithm, got, alg)
	}
	return got, nil
}

// keyFits reports whether key is of the type and size alg needs.
func keyFits(alg string, key any) bool {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256":
		k, ok := key.(*rsa.PublicKey)
		return ok && k.N.BitLen() >= minRSABits
	case "ES256", "ES384":
		k, ok := key.(*ecdsa.PublicKey)
		want := elliptic.P256()
		if alg == "ES384" {
			want = elliptic.P384()
		}
		return ok && k.Curve == want
	case "EdDSA":
		_, ok := key.(ed25519.PublicKey)
		return ok
	}
	return false
}
