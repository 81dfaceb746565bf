package tokens

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Secret is one HS256 secret. ID is the kid that tokens signed with it carry; empty only
// for a single plain secret, whose tokens carry no kid (as before rotation existed).
type Secret struct {
	ID  string
	Key []byte
}

var secretID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ParseSecrets reads JWT_SECRET: either one plain secret (no ':' in it), or a
// comma-separated list of id:secret entries, the first of which signs new tokens.
// Every secret must be at least MinSecretBytes long and every id unique.
func ParseSecrets(s string) ([]Secret, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	if !strings.Contains(s, ":") {
		if len(s) < MinSecretBytes {
			return nil, fmt.Errorf("must be at least %d bytes, got %d", MinSecretBytes, len(s))
		}
		return []Secret{{Key: []byte(s)}}, nil
	}
	// Errors name entries by number, never by their text: a single secret that happens to
	// contain ':' lands here, and the part before it is secret, not an id.
	var out []Secret
	seen := map[string]bool{}
	for i, entry := range strings.Split(s, ",") {
		id, key, ok := strings.Cut(strings.TrimSpace(entry), ":")
		switch {
		case !ok:
			return nil, fmt.Errorf("entry %d: not id:secret (a list of keyed secrets looks like new:SECRET1,old:SECRET2)", i+1)
		case !secretID.MatchString(id):
			return nil, fmt.Errorf("entry %d: the id before ':' must be 1 to 64 of A-Z a-z 0-9 . _ - (a single secret must not contain ':')", i+1)
		case seen[id]:
			return nil, fmt.Errorf("entry %d: its id repeats an earlier entry's", i+1)
		case len(key) < MinSecretBytes:
			return nil, fmt.Errorf("entry %d: secret must be at least %d bytes, got %d", i+1, MinSecretBytes, len(key))
		}
		seen[id] = true
		out = append(out, Secret{ID: id, Key: []byte(key)})
	}
	return out, nil
}
