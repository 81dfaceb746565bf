package history

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// Rule gives the channels whose name matches Pattern (a glob where * matches any run of
// characters, as in CHANNEL_ROLES) their own limits.
type Rule struct {
	Pattern string
	Limits  Limits
}

// Policy is which channels keep history, and how much: the first matching rule, else
// Default. Internal channels (names starting with '#') and member events never do.
type Policy struct {
	Default Limits
	Rules   []Rule
}

// For is channel's limits; Size 0 means no history.
func (p Policy) For(channel string) Limits {
	if strings.HasPrefix(channel, "#") {
		return Limits{}
	}
	for _, r := range p.Rules {
		if ok, _ := path.Match(r.Pattern, channel); ok {
			return r.Limits
		}
	}
	return p.Default
}

// Bounds of the configured limits: beyond them one channel's history would hold too
// much memory (or keep it too long) for the server to stay bounded.
const (
	MaxSize = 100_000
	MaxTTL  = 24 * time.Hour
	minTTL  = time.Second
)

// ParseRules parses CHANNEL_HISTORY: "pattern=spec;pattern=spec" where spec is 0 (off),
// a size (with the default TTL), or size/ttl (e.g. presence-*=0;private-chat-*=1000/10m).
func ParseRules(s string, def Limits) ([]Rule, error) {
	var out []Rule
	for _, item := range strings.Split(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		pat, spec, ok := strings.Cut(item, "=")
		pat, spec = strings.TrimSpace(pat), strings.TrimSpace(spec)
		if !ok || pat == "" || spec == "" {
			return nil, fmt.Errorf("%q is not pattern=size or pattern=size/ttl (e.g. private-chat-*=1000/10m)", item)
		}
		if _, err := path.Match(pat, ""); err != nil {
			return nil, fmt.Errorf("%q: bad pattern: %w", pat, err)
		}
		l, err := ParseLimits(spec, def.TTL)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", item, err)
		}
		out = append(out, Rule{Pattern: pat, Limits: l})
	}
	return out, nil
}

// ParseLimits parses "size" or "size/ttl"; size 0 turns history off.
func ParseLimits(spec string, defTTL time.Duration) (Limits, error) {
	size, ttl, found := strings.Cut(spec, "/")
	n, err := strconv.Atoi(strings.TrimSpace(size))
	if err != nil || n < 0 || n > MaxSize {
		return Limits{}, fmt.Errorf("size %q must be a whole number from 0 (off) to %d", size, MaxSize)
	}
	l := Limits{Size: n, TTL: defTTL}
	if found {
		d, err := time.ParseDuration(strings.TrimSpace(ttl))
		if err != nil || d < minTTL || d > MaxTTL {
			return Limits{}, fmt.Errorf("ttl %q must be a duration from %s to %s (e.g. 10m)", ttl, minTTL, MaxTTL)
		}
		l.TTL = d
	}
	if n == 0 {
		return Limits{}, nil
	}
	return l, nil
}
