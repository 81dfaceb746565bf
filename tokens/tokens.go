// Package tokens issues and verifies Jetsocket's JSON Web Tokens: its own HS256 tokens
// (one secret or several, for rotation) and, when a JWKS is configured, an identity
// provider's asymmetric tokens, whose claims are mapped onto the same Claims.
//
// It knows nothing of HTTP or sockets: the middleware and the socket layer call Verify and
// carry the resulting *Claims around.
package tokens

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Verifier checks a token and returns its claims: what the handshake, the Bearer routes
// and a connection's refresh need of a Manager (declared once, here).
type Verifier interface {
	Verify(token string) (*Claims, error)
}

var _ Verifier = (*Manager)(nil)

// MinSecretBytes is the shortest HS256 secret accepted: HMAC-SHA256 keys shorter than
// the hash output weaken the signature.
const MinSecretBytes = 32

// MaxTokenBytes bounds the token size accepted: a handshake query of megabytes would
// otherwise be parsed and base64-decoded before the signature check rejects it.
const MaxTokenBytes = 8 << 10

// Claims are the claims Jetsocket puts in, and reads from, a token. The channel rules
// read the roles, Groups and Permissions; presence reads Name. For a provider's token
// they are the mapped values (see ClaimMapping), Role being the first of Roles.
type Claims struct {
	Name        string   `json:"name,omitempty"`
	Email       string   `json:"email,omitempty"`
	Role        string   `json:"role,omitempty"`
	Roles       []string `json:"roles,omitempty"`
	Groups      []string `json:"groups,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
	jwt.RegisteredClaims
}

// UserID is the token's subject.
func (c *Claims) UserID() string { return c.Subject }

// HasRole reports whether r is the claims' role or one of their roles.
func (c *Claims) HasRole(r string) bool { return c.Role == r || slices.Contains(c.Roles, r) }

// HasGroup reports whether the claims list group g.
func (c *Claims) HasGroup(g string) bool { return slices.Contains(c.Groups, g) }

// HasPermission reports whether the claims list permission p.
func (c *Claims) HasPermission(p string) bool { return slices.Contains(c.Permissions, p) }

// Expiry is the token's expiry (zero when absent, which Verify never lets through).
func (c *Claims) Expiry() time.Time {
	if c.ExpiresAt == nil {
		return time.Time{}
	}
	return c.ExpiresAt.Time
}

// User is what the issuer needs to know about a user to mint a token.
type User struct {
	ID          string
	Name        string
	Email       string
	Role        string
	Groups      []string
	Permissions []string
}

// Config configures a Manager.
type Config struct {
	// Secret is one HS256 secret; tokens carry no kid. Secrets, when set instead, are
	// several with ids: the first signs (its id as kid), all verify.
	Secret   []byte
	Secrets  []Secret
	Issuer   string // set on issue and required on verify when not empty
	Audience string // likewise
	TTL      time.Duration
	Leeway   time.Duration
	Now      func() time.Time // for tests; time.Now when nil
	// Keys, if set, verify an identity provider's tokens (asymmetricAlgs), whose claims
	// Mapping maps.
	Keys    *KeySet
	Mapping ClaimMapping
}

// Manager issues tokens with its first secret and verifies its own and, with a KeySet,
// an identity provider's.
type Manager struct {
	cfg     Config
	secrets []Secret
	own     *jwt.Parser
	foreign *jwt.Parser
}

// NewManager checks cfg and returns a Manager.
func NewManager(cfg Config) (*Manager, error) {
	secrets := cfg.Secrets
	switch {
	case len(cfg.Secret) > 0 && len(secrets) > 0:
		return nil, errors.New("tokens: set Secret or Secrets, not both")
	case len(secrets) == 0:
		secrets = []Secret{{Key: cfg.Secret}}
	case len(secrets) > 1 || secrets[0].ID != "":
		for _, s := range secrets {
			if s.ID == "" {
				return nil, errors.New("tokens: with several secrets, each needs an id")
			}
		}
	}
	for _, s := range secrets {
		if len(s.Key) < MinSecretBytes {
			return nil, fmt.Errorf("tokens: secret must be at least %d bytes, got %d", MinSecretBytes, len(s.Key))
		}
	}
	if cfg.TTL <= 0 {
		return nil, errors.New("tokens: TTL must be positive")
	}
	if cfg.Leeway < 0 {
		return nil, errors.New("tokens: leeway must not be negative")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	opts := []jwt.ParserOption{
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	cfg.Mapping = cfg.Mapping.withDefaults()
	return &Manager{
		cfg:     cfg,
		secrets: secrets,
		own:     jwt.NewParser(opts...),
		// Numbers stay exact: a numeric user id must not become 1.2e+07.
		foreign: jwt.NewParser(append(opts, jwt.WithJSONNumber())...),
	}, nil
}

// TTL is how long issued tokens live.
func (m *Manager) TTL() time.Duration { return m.cfg.TTL }

// Issue mints a token for u, valid from now for the configured TTL.
func (m *Manager) Issue(u User) (token string, expiresAt time.Time, err error) {
	if u.ID == "" {
		return "", time.Time{}, errors.New("tokens: user has no id")
	}
	now := m.cfg.Now().Truncate(time.Second)
	expiresAt = now.Add(m.cfg.TTL)
	var jti [12]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("tokens: token id: %w", err)
	}
	claims := Claims{
		Name:        u.Name,
		Email:       u.Email,
		Role:        u.Role,
		Groups:      u.Groups,
		Permissions: u.Permissions,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   u.ID,
			Issuer:    m.cfg.Issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(expiresAt),
			ID:        hex.EncodeToString(jti[:]),
		},
	}
	if m.cfg.Audience != "" {
		claims.Audience = jwt.ClaimStrings{m.cfg.Audience}
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	signer := m.secrets[0]
	if signer.ID != "" {
		t.Header["kid"] = signer.ID
	}
	token, err = t.SignedString(signer.Key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("tokens: sign: %w", err)
	}
	return token, expiresAt, nil
}

// Verify checks token and returns its claims. Every refusal is an *Error whose Reason
// says why, for logs and metrics; the token itself is never part of the error.
func (m *Manager) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, &Error{Reason: ReasonMissing}
	}
	if len(token) > MaxTokenBytes {
		return nil, &Error{Reason: ReasonTooLarge}
	}
	if m.cfg.Keys != nil && !isHS256(token) {
		return m.verifyForeign(token)
	}
	claims := &Claims{}
	if _, err := m.own.ParseWithClaims(token, claims, m.ownKey); err != nil {
		return nil, classify(err)
	}
	if claims.Subject == "" {
		return nil, &Error{Reason: ReasonClaims, err: errors.New("no sub claim")}
	}
	return claims, nil
}

// ownKey is the jwt.Keyfunc for our own tokens. Only HS256: this rules out alg "none"
// and algorithm confusion (a provider's public key is never an HMAC secret: those are
// only ever our secrets). A kid must name one of our secrets; a token without one is
// tried with each (tokens issued before the secrets had ids).
func (m *Manager) ownKey(t *jwt.Token) (any, error) {
	if t.Method != jwt.SigningMethodHS256 {
		return nil, errAlgorithm
	}
	kid, ok := t.Header["kid"]
	if !ok {
		if len(m.secrets) == 1 {
			return m.secrets[0].Key, nil
		}
		set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(m.secrets))}
		for i, s := range m.secrets {
			set.Keys[i] = s.Key
		}
		return set, nil
	}
	if id, _ := kid.(string); id != "" {
		for _, s := range m.secrets {
			if s.ID == id {
				return s.Key, nil
			}
		}
	}
	return nil, errUnknownKey
}

// verifyForeign verifies a token signed with a provider key and maps its claims.
func (m *Manager) verifyForeign(token string) (*Claims, error) {
	mc := jwt.MapClaims{}
	_, err := m.foreign.ParseWithClaims(token, mc, func(t *jwt.Token) (any, error) {
		if !slices.Contains(asymmetricAlgs, t.Method.Alg()) {
			return nil, errAlgorithm
		}
		return m.cfg.Keys.key(t)
	})
	if err != nil {
		return nil, classify(err)
	}
	c, err := m.cfg.Mapping.mapClaims(mc)
	if err != nil {
		return nil, &Error{Reason: ReasonClaims, err: err}
	}
	return c, nil
}

// isHS256 reports whether the token's header names HS256. Anything unreadable is
// "not HS256", and the provider path refuses it as the parser finds it.
func isHS256(token string) bool {
	head, _, ok := strings.Cut(token, ".")
	if !ok || len(head) > 1024 {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	return json.Unmarshal(raw, &h) == nil && h.Alg == "HS256"
}

// Reason names why a token was refused. The values are stable: they appear in logs,
// metrics labels and the handshake's error message.
type Reason string

const (
	ReasonMissing     Reason = "missing"
	ReasonTooLarge    Reason = "too_large"
	ReasonMalformed   Reason = "malformed"
	ReasonAlgorithm   Reason = "bad_algorithm"
	ReasonSignature   Reason = "bad_signature"
	ReasonExpired     Reason = "expired"
	ReasonNotYetValid Reason = "not_yet_valid"
	ReasonClaims      Reason = "bad_claims"
	ReasonUnknownKey  Reason = "unknown_key"
)

// Error is a refused token.
type Error struct {
	Reason Reason
	err    error
}

func (e *Error) Error() string {
	if e.err != nil {
		return fmt.Sprintf("token %s: %v", e.Reason, e.err)
	}
	return "token " + string(e.Reason)
}

func (e *Error) Unwrap() error { return e.err }

// Message is a short, safe description of the refusal for the client.
func (e *Error) Message() string {
	switch e.Reason {
	case ReasonMissing:
		return "token missing"
	case ReasonTooLarge:
		return "token too large"
	case ReasonMalformed:
		return "token malformed"
	case ReasonAlgorithm:
		return "token signing algorithm not accepted"
	case ReasonSignature:
		return "token signature invalid"
	case ReasonExpired:
		return "token expired"
	case ReasonNotYetValid:
		return "token not valid yet"
	case ReasonUnknownKey:
		return "token signing key unknown"
	default:
		return "token claims invalid"
	}
}

// ReasonOf returns the Reason of a Verify error (ReasonMalformed for foreign errors).
func ReasonOf(err error) Reason {
	var te *Error
	if errors.As(err, &te) {
		return te.Reason
	}
	return ReasonMalformed
}

var errAlgorithm = errors.New("signing method not accepted")

func classify(err error) *Error {
	switch {
	case errors.Is(err, errUnknownKey):
		return &Error{Reason: ReasonUnknownKey, err: err}
	case errors.Is(err, errAlgorithm), errors.Is(err, jwt.ErrTokenUnverifiable):
		return &Error{Reason: ReasonAlgorithm, err: err}
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return &Error{Reason: ReasonSignature, err: err}
	case errors.Is(err, jwt.ErrTokenExpired):
		return &Error{Reason: ReasonExpired, err: err}
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return &Error{Reason: ReasonNotYetValid, err: err}
	case errors.Is(err, jwt.ErrTokenMalformed):
		return &Error{Reason: ReasonMalformed, err: err}
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing),
		errors.Is(err, jwt.ErrTokenInvalidIssuer),
		errors.Is(err, jwt.ErrTokenInvalidAudience),
		errors.Is(err, jwt.ErrTokenInvalidClaims):
		return &Error{Reason: ReasonClaims, err: err}
	default:
		return &Error{Reason: ReasonMalformed, err: err}
	}
}

type ctxKey struct{}

// WithClaims returns a context carrying c.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the claims stored by WithClaims.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(ctxKey{}).(*Claims)
	return c, ok && c != nil
}
