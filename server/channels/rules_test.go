package channels

import (
	"errors"
	"strings"
	"testing"

	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/tokens"
)

func TestParse(t *testing.T) {
	ok := map[string]Kind{
		"chat": Public, "a-b_c=d@e,f.g;h": Public, "private-x": Private, "presence-room": Presence,
		"private-encrypted-x": PrivateEncrypted, strings.Repeat("a", 164): Public, "privatex": Public,
	}
	for name, kind := range ok {
		c, err := Parse(name)
		if err != nil || c.Kind != kind || c.Name != name {
			t.Errorf("%q: %+v %v", name, c, err)
		}
	}
	for _, name := range []string{"", strings.Repeat("a", 165), "a b", "a/b", "ä", "x#", "private-", "presence-", "private-encrypted-", "a\x00", "*"} {
		_, err := Parse(name)
		var e *errs.Error
		if !errors.As(err, &e) || e.Kind != errs.Invalid {
			t.Errorf("%q: got %v, want an Invalid error", name, err)
		}
	}
	if c, _ := Parse("private-encrypted-user-7"); c.Rest != "user-7" {
		t.Errorf("rest %q", c.Rest)
	}
}

func TestRules(t *testing.T) {
	roles, err := ParseRoleRules("private-admin-*=admin; private-moderator-*=admin,moderator;presence-staff-*=admin;private-encrypted-mods-*=moderator")
	if err != nil {
		t.Fatal(err)
	}
	rules := &Rules{Roles: roles}
	alice := &tokens.Claims{Role: "admin", Groups: []string{"staff", "ops"}, Permissions: []string{PermissionEncrypted}}
	alice.Subject = "1"
	bob := &tokens.Claims{Role: "user", Groups: []string{"staff"}}
	bob.Subject = "2"
	carol := &tokens.Claims{Role: "moderator", Groups: []string{"support"}, Permissions: []string{PermissionEncrypted}}
	carol.Subject = "3"
	dave := &tokens.Claims{Role: "user"}
	dave.Subject = "4"
	// A provider's token: several roles, mapped (Role is the first of Roles).
	erin := &tokens.Claims{Role: "viewer", Roles: []string{"viewer", "moderator"}}
	erin.Subject = "5"
	frank := &tokens.Claims{Role: "viewer", Roles: []string{"viewer", "admin"}}
	frank.Subject = "6"

	tests := []struct {
		channel string
		who     *tokens.Claims
		allow   bool
	}{
		{"news", bob, true},
		{"news", nil, true},
		{"private-user-2", bob, true},
		{"private-user-2", alice, false},
		{"private-user-", bob, false},
		{"private-user-22", bob, false},
		{"presence-user-1", alice, true},
		{"presence-user-1", bob, false},
		{"private-group-staff", bob, true},
		{"private-group-staff", carol, false},
		{"private-group-", bob, false},
		{"presence-group-support", carol, true},
		{"private-admin-panel", alice, true},
		{"private-admin-panel", carol, false},
		{"private-moderator-queue", carol, true},
		{"private-moderator-queue", alice, true},
		{"private-moderator-queue", bob, false},
		{"presence-staff-room", alice, true},
		{"presence-staff-room", bob, false},
		{"presence-lobby", dave, true},
		{"presence-lobby", nil, false},
		{"private-anything", alice, false},
		{"private-anything", bob, false},
		{"private-encrypted-user-1", alice, true},
		{"private-encrypted-user-2", bob, false}, // own channel, but no permission
		{"private-encrypted-group-support", carol, true},
		{"private-encrypted-group-staff", bob, false},
		{"private-moderator-queue", erin, true}, // second role of a list
		{"private-admin-panel", erin, false},
		{"private-admin-panel", frank, true},
		{"private-encrypted-user-6", frank, true}, // admin in a role list opens encrypted channels
		{"private-encrypted-user-5", erin, false},
		// Encrypted: the permission (or role admin), and any name rule as well.
		{"private-encrypted-secure-chat", alice, true},    // no name rule: the permission is enough
		{"private-encrypted-secure-chat", carol, true},    // permission without role admin
		{"private-encrypted-secure-chat", bob, false},     // neither
		{"private-encrypted-secure-chat", nil, false},     // not authenticated
		{"private-encrypted-group-staff", alice, true},    // admin in the group
		{"private-encrypted-group-support", alice, false}, // admin, but not in the group
		{"private-encrypted-user-3", alice, false},        // admin, but not that user
		{"private-encrypted-mods-room", carol, true},      // CHANNEL_ROLES match and permission
		{"private-encrypted-mods-room", alice, false},     // admin, but the role rule says moderator
		{"private-encrypted-mods-room", dave, false},      // no permission
	}
	for _, tt := range tests {
		name := "nobody"
		if tt.who != nil {
			name = tt.who.Subject
		}
		t.Run(tt.channel+"/"+name, func(t *testing.T) {
			ch, err := Parse(tt.channel)
			if err != nil {
				t.Fatal(err)
			}
			err = rules.Check(tt.who, ch)
			if tt.allow != (err == nil) {
				t.Fatalf("allow=%v, got %v", tt.allow, err)
			}
			var e *errs.Error
			if err != nil && (!errors.As(err, &e) || e.Kind != errs.Forbidden) {
				t.Fatalf("refusal %v is not Forbidden", err)
			}
		})
	}
}

func TestParseRoleRulesRefusesBadSyntax(t *testing.T) {
	for _, s := range []string{"private-x", "=admin", "private-x=", "private-x=,", "private x=admin", "a/b=admin"} {
		if _, err := ParseRoleRules(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if r, err := ParseRoleRules(" ; "); err != nil || len(r) != 0 {
		t.Errorf("empty rules: %v %v", r, err)
	}
}

func TestAuthorizerCustomGuardsFirst(t *testing.T) {
	bob := &tokens.Claims{Role: "user"}
	bob.Subject = "2"
	vip := func(r Request) error {
		if r.Channel.Name == "private-vip" {
			if r.Claims.Role == "vip" {
				return nil
			}
			return Denied("vips only")
		}
		return ErrNoOpinion
	}
	broken := func(r Request) error {
		if r.Channel.Name == "private-broken" {
			return errors.New("db down")
		}
		return ErrNoOpinion
	}
	a := NewAuthorizer(&Rules{}, vip, broken)
	check := func(name string, c *tokens.Claims) error {
		ch, _ := Parse(name)
		return a.Authorize(Request{Claims: c, Channel: ch})
	}
	if err := check("private-vip", bob); err == nil || !strings.Contains(err.Error(), "vips only") {
		t.Fatalf("vip guard: %v", err)
	}
	vipUser := &tokens.Claims{Role: "vip"}
	vipUser.Subject = "9"
	if err := check("private-vip", vipUser); err != nil {
		t.Fatalf("vip allowed: %v", err)
	}
	if err := check("private-broken", bob); err == nil || err.Error() != "db down" {
		t.Fatalf("guard error passed through: %v", err)
	}
	if err := check("private-user-2", bob); err != nil {
		t.Fatalf("defaults still apply: %v", err)
	}
	if err := check("private-other", bob); err == nil {
		t.Fatal("deny by default")
	}
}

func BenchmarkRules(b *testing.B) {
	roles, _ := ParseRoleRules("private-admin-*=admin;private-moderator-*=admin,moderator")
	rules := &Rules{Roles: roles}
	c := &tokens.Claims{Role: "moderator", Groups: []string{"a", "b", "c"}}
	c.Subject = "3"
	ch, _ := Parse("private-moderator-queue")
	b.ReportAllocs()
	for b.Loop() {
		if err := rules.Check(c, ch); err != nil {
			b.Fatal(err)
		}
	}
}
