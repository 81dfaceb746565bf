// Package users holds the accounts that may log in, and checks their passwords.
package users

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/jetsocket/jetsocket/tokens"
)

// ErrInvalidCredentials is the one answer for an unknown user and a wrong password.
var ErrInvalidCredentials = errors.New("invalid credentials")

// Record is one entry of USERS_FILE.
type Record struct {
	Username       string   `json:"username"`
	PasswordBcrypt string   `json:"password_bcrypt"`
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	Email          string   `json:"email"`
	Role           string   `json:"role"`
	Groups         []string `json:"groups"`
	Permissions    []string `json:"permissions"`
}

// Store checks credentials against a fixed set of users.
type Store struct {
	byName map[string]Record
	// dummy is hashed with the same cost as the real hashes, so an unknown user costs
	// the same bcrypt work as a wrong password and timing tells nothing.
	dummy []byte
}

// Demo are the development users, documented in the README ("Run"). Their bcrypt hashes are
// precomputed (cost 10) so start-up stays fast.
var Demo = []Record{
	{Username: "alice", PasswordBcrypt: "$2a$10$HTUtnKchv7490/eUlZoYHeMrTTJ/aEGG1Ao0G.3ZKeuMEmb4jJGkO", ID: "1", Name: "Alice Admin", Email: "alice@example.com", Role: "admin", Groups: []string{"staff", "ops"}, Permissions: []string{"encrypted-channels"}},
	{Username: "bob", PasswordBcrypt: "$2a$10$x.vc6EGsvgtl8diwwO0/7uoeNNlDpn17zafZOUv3Jt1ZbbJ2Ndstm", ID: "2", Name: "Bob Builder", Email: "bob@example.com", Role: "user", Groups: []string{"staff"}},
	{Username: "carol", PasswordBcrypt: "$2a$10$faAQxv8zLdAn9TAcLhqoRe5lyYCpcW0qQYKWmxVkI0ZLXg4Ru.KHe", ID: "3", Name: "Carol Moderator", Email: "carol@example.com", Role: "moderator", Groups: []string{"support"}},
}

// NewStore validates records and builds a Store.
func NewStore(records []Record) (*Store, error) {
	if len(records) == 0 {
		return nil, errors.New("no users")
	}
	s := &Store{byName: make(map[string]Record, len(records))}
	ids := make(map[string]bool, len(records))
	maxCost := 0
	for i, r := range records {
		switch {
		case strings.TrimSpace(r.Username) == "":
			return nil, fmt.Errorf("user %d: empty username", i)
		case r.ID == "":
			return nil, fmt.Errorf("user %q: empty id", r.Username)
		case s.byName[r.Username].Username != "":
			return nil, fmt.Errorf("user %q: duplicate username", r.Username)
		case ids[r.ID]:
			return nil, fmt.Errorf("user %q: duplicate id %q", r.Username, r.ID)
		}
		cost, err := bcrypt.Cost([]byte(r.PasswordBcrypt))
		if err != nil {
			return nil, fmt.Errorf("user %q: password_bcrypt is not a bcrypt hash", r.Username)
		}
		maxCost = max(maxCost, cost)
		ids[r.ID] = true
		s.byName[r.Username] = r
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("jetsocket-timing-equaliser"), maxCost)
	if err != nil {
		return nil, fmt.Errorf("dummy hash: %w", err)
	}
	s.dummy = dummy
	return s, nil
}

// LoadFile reads a USERS_FILE (a JSON array of Record).
func LoadFile(path string) (*Store, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read users file: %w", err)
	}
	var records []Record
	if err := json.Unmarshal(b, &records); err != nil {
		return nil, fmt.Errorf("parse users file %s: %w", path, err)
	}
	s, err := NewStore(records)
	if err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	return s, nil
}

// Authenticate returns the user for username and password, or ErrInvalidCredentials.
func (s *Store) Authenticate(username, password string) (tokens.User, error) {
	r, ok := s.byName[username]
	hash := s.dummy
	if ok {
		hash = []byte(r.PasswordBcrypt)
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	if !ok || err != nil {
		return tokens.User{}, ErrInvalidCredentials
	}
	return tokens.User{ID: r.ID, Name: r.Name, Email: r.Email, Role: r.Role, Groups: r.Groups, Permissions: r.Permissions}, nil
}

// Exists reports whether username names a user.
func (s *Store) Exists(username string) bool {
	_, ok := s.byName[username]
	return ok
}

// Len is the number of users.
func (s *Store) Len() int { return len(s.byName) }
