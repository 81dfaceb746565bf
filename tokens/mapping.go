package tokens

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// maxUserIDBytes bounds a mapped user id: it names channels and log fields.
const maxUserIDBytes = 256

// ClaimMapping says where, in a token Jetsocket did not issue, the claims it needs are.
// Each field is a claim name or a dotted path into nested claims ("realm_access.roles");
// a name that itself contains dots ("https://example.com/roles") is tried whole first.
// An empty field takes its default.
type ClaimMapping struct {
	UserID      string // default "sub"
	Name        string // default "name"
	Roles       string // default "roles"; one string or a list of strings
	Groups      string // default "groups"; one string or a list of strings
	Permissions string // default "permissions"; a list, or a space-separated string such as "scope"
}

func (m ClaimMapping) withDefaults() ClaimMapping {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&m.UserID, "sub")
	def(&m.Name, "name")
	def(&m.Roles, "roles")
	def(&m.Groups, "groups")
	def(&m.Permissions, "permissions")
	return m
}

// CheckClaimPath reports whether p can name a claim: no empty path segment and no spaces.
func CheckClaimPath(p string) error {
	if p == "" {
		return errors.New("empty")
	}
	if strings.ContainsAny(p, " \t\r\n") {
		return fmt.Errorf("%q contains white space", p)
	}
	if strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, "..") {
		return fmt.Errorf("%q has an empty path segment", p)
	}
	return nil
}

// lookup finds path in m: the whole name first, then, at each dot from the left, the
// part before it as a nested object holding the rest.
func lookup(m map[string]any, path string) (any, bool) {
	if v, ok := m[path]; ok {
		return v, true
	}
	for i := 0; i < len(path); i++ {
		if path[i] != '.' {
			continue
		}
		if sub, ok := m[path[:i]].(map[string]any); ok {
			if v, ok := lookup(sub, path[i+1:]); ok {
				return v, true
			}
		}
	}
	return nil, false
}

// mapClaims turns a verified foreign token's claims into the Claims the rest of the
// server reads.
func (m ClaimMapping) mapClaims(mc jwt.MapClaims) (*Claims, error) {
	c := &Claims{}
	var err error
	if c.Subject, err = m.userID(mc); err != nil {
		return nil, err
	}
	if c.Name, err = str(mc, m.Name); err != nil {
		return nil, err
	}
	if c.Email, err = str(mc, "email"); err != nil {
		return nil, err
	}
	if c.Roles, err = list(mc, m.Roles, false); err != nil {
		return nil, err
	}
	if c.Groups, err = list(mc, m.Groups, false); err != nil {
		return nil, err
	}
	if c.Permissions, err = list(mc, m.Permissions, true); err != nil {
		return nil, err
	}
	if len(c.Roles) > 0 {
		c.Role = c.Roles[0]
	}
	// The registered claims were validated by the parser; copy them for expiry and logs.
	c.Issuer, _ = mc.GetIssuer()
	c.Audience, _ = mc.GetAudience()
	c.ExpiresAt, _ = mc.GetExpirationTime()
	c.IssuedAt, _ = mc.GetIssuedAt()
	c.NotBefore, _ = mc.GetNotBefore()
	if jti, ok := mc["jti"].(string); ok {
		c.ID = jti
	}
	return c, nil
}

func (m ClaimMapping) userID(mc jwt.MapClaims) (string, error) {
	v, ok := lookup(mc, m.UserID)
	var id string
	switch v := v.(type) {
	case string:
		id = v
	case json.Number: // numeric user ids: the parser keeps numbers exact
		id = v.String()
	}
	switch {
	case !ok:
		return "", fmt.Errorf("no %s claim (the user id)", m.UserID)
	case id == "":
		return "", fmt.Errorf("claim %s (the user id) must be a non-empty string", m.UserID)
	case len(id) > maxUserIDBytes:
		return "", fmt.Errorf("claim %s (the user id) longer than %d bytes", m.UserID, maxUserIDBytes)
	}
	return id, nil
}

func str(mc jwt.MapClaims, path string) (string, error) {
	v, ok := lookup(mc, path)
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("claim %s must be a string", path)
	}
	return s, nil
}

// list reads a string or a list of strings; with split, a string is a space-separated
// list (OAuth's scope).
func list(mc jwt.MapClaims, path string, split bool) ([]string, error) {
	v, ok := lookup(mc, path)
	if !ok || v == nil {
		return nil, nil
	}
	switch v := v.(type) {
	case string:
		if split {
			return strings.Fields(v), nil
		}
		if v == "" {
			return nil, nil
		}
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("claim %s must be a string or a list of strings", path)
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("claim %s must be a string or a list of strings", path)
	}
}
