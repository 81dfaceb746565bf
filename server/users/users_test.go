package users

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestDemoUsers(t *testing.T) {
	s, err := NewStore(Demo)
	if err != nil {
		t.Fatal(err)
	}
	for name, pw := range map[string]string{"alice": "alice123", "bob": "bob123", "carol": "carol123"} {
		u, err := s.Authenticate(name, pw)
		if err != nil || u.ID == "" || u.Name == "" {
			t.Fatalf("%s: %+v %v", name, u, err)
		}
	}
	if u, _ := s.Authenticate("alice", "alice123"); u.Role != "admin" || len(u.Permissions) != 1 {
		t.Fatalf("alice's claims: %+v", u)
	}
	for _, c := range [][2]string{{"alice", "bob123"}, {"mallory", "alice123"}, {"", ""}, {"alice", ""}} {
		if _, err := s.Authenticate(c[0], c[1]); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("%q/%q: %v", c[0], c[1], err)
		}
	}
}

func TestUnknownUserCostsTheSameBcryptWork(t *testing.T) {
	s, err := NewStore(Demo)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := bcrypt.Cost([]byte(Demo[0].PasswordBcrypt))
	if got, err := bcrypt.Cost(s.dummy); err != nil || got != want {
		t.Fatalf("dummy cost %d, users' cost %d", got, want)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	good := write("good.json", `[{"username":"zed","password_bcrypt":"`+string(hash)+`","id":"9","name":"Zed","role":"user","groups":["g"]}]`)
	s, err := LoadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := s.Authenticate("zed", "pw"); err != nil || u.ID != "9" || u.Groups[0] != "g" {
		t.Fatalf("%+v %v", u, err)
	}
	for name, body := range map[string]string{
		"notjson.json": `{`,
		"empty.json":   `[]`,
		"nohash.json":  `[{"username":"a","password_bcrypt":"plain","id":"1"}]`,
		"noid.json":    `[{"username":"a","password_bcrypt":"` + string(hash) + `"}]`,
		"dupe.json":    `[{"username":"a","password_bcrypt":"` + string(hash) + `","id":"1"},{"username":"a","password_bcrypt":"` + string(hash) + `","id":"2"}]`,
		"dupeid.json":  `[{"username":"a","password_bcrypt":"` + string(hash) + `","id":"1"},{"username":"b","password_bcrypt":"` + string(hash) + `","id":"1"}]`,
	} {
		if _, err := LoadFile(write(name, body)); err == nil {
			t.Errorf("%s accepted", name)
		} else if strings.Contains(err.Error(), string(hash)) {
			t.Errorf("%s: error repeats the hash", name)
		}
	}
	if _, err := LoadFile(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file accepted")
	}
}
