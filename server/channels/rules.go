package channels

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/tokens"
)

// PermissionEncrypted lets a user subscribe to private-encrypted- channels.
const PermissionEncrypted = "encrypted-channels"

// RoleAdmin may subscribe to private-encrypted- channels without the permission.
const RoleAdmin = "admin"

// Request is what a guard decides on. Auth and ChannelData carry a Pusher-style
// delegated authorization (an app backend's signature) for guards that accept one.
type Request struct {
	Claims      *tokens.Claims
	Channel     Channel
	SocketID    string
	Auth        string
	ChannelData string
}

// Guard decides whether a subscription is allowed. It returns nil to allow, an error to
// deny (an *errs.Error is sent as it is; any other error counts as a server fault), or
// ErrNoOpinion to leave the decision to the next guard. Guards must not block: they run
// on the connection's read loop.
type Guard func(r Request) error

// ErrNoOpinion is returned by a guard that does not decide on a channel.
var ErrNoOpinion = errors.New("guard has no opinion")

// Denied is the refusal when no guard allows a channel.
func Denied(msg string) *errs.Error { return errs.New(errs.Forbidden, errs.CodeForbidden, msg) }

// Authorizer runs guards in order; the first one with an opinion decides, and a channel
// no guard allows is denied.
type Authorizer struct {
	guards []Guard
}

// NewAuthorizer returns an Authorizer running custom guards first, then the defaults.
func NewAuthorizer(defaults *Rules, custom ...Guard) *Authorizer {
	gs := append(slices.Clone(custom), defaults.Guard())
	return &Authorizer{guards: gs}
}

// Authorize decides r.
func (a *Authorizer) Authorize(r Request) error {
	for _, g := range a.guards {
		err := g(r)
		if errors.Is(err, ErrNoOpinion) {
			continue
		}
		return err
	}
	return Denied("no rule allows this channel")
}

// RoleRule gives the roles allowed on channels whose full name matches Pattern
// (a glob where * matches any run of characters).
type RoleRule struct {
	Pattern string
	Roles   []string
}

// ParseRoleRules parses CHANNEL_ROLES: "pattern=role,role;pattern=role".
func ParseRoleRules(s string) ([]RoleRule, error) {
	var rules []RoleRule
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		pat, roles, ok := strings.Cut(part, "=")
		pat = strings.TrimSpace(pat)
		if !ok || pat == "" {
			return nil, fmt.Errorf("%q: want pattern=role[,role]", part)
		}
		probe := strings.ReplaceAll(pat, "*", "x")
		if _, err := Parse(probe); err != nil {
			return nil, fmt.Errorf("%q: pattern must be a channel name, optionally with *", pat)
		}
		r := RoleRule{Pattern: pat}
		for _, role := range strings.Split(roles, ",") {
			if role = strings.TrimSpace(role); role != "" {
				r.Roles = append(r.Roles, role)
			}
		}
		if len(r.Roles) == 0 {
			return nil, fmt.Errorf("%q: no roles after '='", part)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// Rules are the default channel rules (PRODUCT.md §5).
type Rules struct {
	Roles []RoleRule
}

// Check is the default decision for claims on ch: nil when allowed, an *errs.Error of
// kind Forbidden otherwise. It never returns ErrNoOpinion: deny by default.
//
//   - public (no prefix): anyone connected;
//   - after the prefix, user-<id>: only the user whose sub is <id>;
//     group-<gid>: only members of group <gid>;
//   - a name matched by a CHANNEL_ROLES pattern: only those roles;
//   - presence- with none of the above: anyone connected; private- with none: nobody;
//   - private-encrypted-: the encrypted-channels permission or role admin, and where one
//     of the name rules above applies, that rule as well (with none, the permission is
//     enough: private-encrypted-secure-chat).
func (rs *Rules) Check(claims *tokens.Claims, ch Channel) error {
	if ch.Kind == Public {
		return nil
	}
	if claims == nil {
		return Denied("not authenticated")
	}
	if ch.Kind == PrivateEncrypted && !claims.HasRole(RoleAdmin) && !claims.HasPermission(PermissionEncrypted) {
		return Denied("encrypted channels need the encrypted-channels permission")
	}
	if applies, err := rs.nameRule(claims, ch); applies {
		return err
	}
	if ch.Kind == Presence || ch.Kind == PrivateEncrypted {
		return nil
	}
	return Denied("no rule allows this channel")
}

// nameRule applies the rule the channel's name falls under, if any: applies reports
// whether one did, err its verdict.
func (rs *Rules) nameRule(claims *tokens.Claims, ch Channel) (applies bool, err error) {
	if id, ok := strings.CutPrefix(ch.Rest, "user-"); ok {
		if id != "" && id == claims.UserID() {
			return true, nil
		}
		return true, Denied("channel belongs to another user")
	}
	if gid, ok := strings.CutPrefix(ch.Rest, "group-"); ok {
		if gid != "" && claims.HasGroup(gid) {
			return true, nil
		}
		return true, Denied("not a member of this group")
	}
	for _, r := range rs.Roles {
		if ok, _ := path.Match(r.Pattern, ch.Name); ok {
			if slices.ContainsFunc(r.Roles, claims.HasRole) {
				return true, nil
			}
			return true, Denied("role not allowed on this channel")
		}
	}
	return false, nil
}

// Guard adapts the rules to a Guard.
func (rs *Rules) Guard() Guard {
	return func(r Request) error { return rs.Check(r.Claims, r.Channel) }
}
