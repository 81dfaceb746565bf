package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"

	"github.com/jetsocket/jetsocket/server"
	"github.com/jetsocket/jetsocket/server/users"
)

// DefaultBcryptCost is the cost `users add` hashes with. 12 is OWASP's floor advice for
// new bcrypt hashes (10 is the library's default and the demo users'); one check takes
// about a quarter of a second on one core (docs/production.md has the figure), which
// LOGIN_RATE_LIMIT bounds per client address. The server accepts any cost; an unknown
// user is checked against the highest cost in the file, so mixing costs leaks nothing.
const DefaultBcryptCost = 12

// minBcryptCost is the least -cost accepted: below the library's default of 10 a hash
// is cheap to brute-force offline.
const minBcryptCost = 10

// minPasswordBytes refuses trivially short passwords; bcrypt itself ignores bytes past
// 72, so longer ones are refused rather than silently cut.
const (
	minPasswordBytes = 8
	maxPasswordBytes = 72
)

// newUsersFileMode is the mode of a users file `users add` creates: the hashes are for the
// server's user only.
const newUsersFileMode fs.FileMode = 0o600

func runUsers(ctx context.Context, args []string, o IO) error {
	if len(args) == 0 {
		return usagef("missing subcommand: add, remove or list")
	}
	switch args[0] {
	case "add":
		return usersAdd(args[1:], o)
	case "remove", "rm":
		return usersRemove(args[1:], o)
	case "list", "ls":
		return usersList(args[1:], o)
	case "-h", "-help", "--help":
		fmt.Fprint(o.Stderr, "Usage: jetsocket users add|remove|list [-file FILE] ...\n'jetsocket users add -h' and so on for their options.\n")
		return nil
	}
	return usagef("unknown subcommand %q: add, remove or list", args[0])
}

// usersFileFlag adds -file (default: USERS_FILE from the environment and .env) and
// returns a function that resolves it after parsing.
func usersFileFlag(fl *flag.FlagSet, envFile *string, o IO) func() (string, error) {
	file := fl.String("file", "", "the users file (default: USERS_FILE from the environment or .env)")
	return func() (string, error) {
		if *file != "" {
			return *file, nil
		}
		getenv, err := server.EnvWithDotenv(*envFile, o.Getenv)
		if err != nil {
			return "", err
		}
		if f := strings.TrimSpace(getenv("USERS_FILE")); f != "" {
			return f, nil
		}
		return "", usagef("no users file: pass -file FILE or set USERS_FILE")
	}
}

func usersAdd(args []string, o IO) error {
	fl, envFile := newFlags("users add", "users add [options] USERNAME\n\nThe password is read from a prompt without echo, or from the first line of stdin when it is not a terminal; never from an argument.", o.Stderr)
	fileOf := usersFileFlag(fl, envFile, o)
	id := fl.String("id", "", "the user id, the token's sub (default: the username)")
	name := fl.String("name", "", "display name (presence user_info)")
	email := fl.String("email", "", "email address")
	role := fl.String("role", "user", "role, for CHANNEL_ROLES")
	groups := fl.String("groups", "", "comma-separated groups")
	perms := fl.String("permissions", "", "comma-separated permissions (e.g. encrypted-channels)")
	cost := fl.Int("cost", DefaultBcryptCost, fmt.Sprintf("bcrypt cost, %d to %d", minBcryptCost, bcrypt.MaxCost))
	pos, err := parse(fl, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("users add takes one USERNAME, got %d arguments (the password is never an argument)", len(pos))
	}
	username := pos[0]
	if strings.TrimSpace(username) != username || username == "" {
		return usagef("username %q is empty or has surrounding spaces", username)
	}
	if *cost < minBcryptCost || *cost > bcrypt.MaxCost {
		return usagef("-cost %d: must be from %d to %d", *cost, minBcryptCost, bcrypt.MaxCost)
	}
	path, err := fileOf()
	if err != nil {
		return err
	}
	f, err := readUsersFile(path, true)
	if err != nil {
		return err
	}
	rec := users.Record{
		Username: username, ID: *id, Name: *name, Email: *email,
		Role: *role, Groups: splitList(*groups), Permissions: splitList(*perms),
	}
	if rec.ID == "" {
		rec.ID = username
	}
	// Every refusal before the prompt: nobody types a password twice to hear "duplicate id".
	if err := f.check(rec); err != nil {
		return err
	}
	password, err := readPassword(o, username)
	if err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword(password, *cost)
	if err != nil {
		return fmt.Errorf("bcrypt: %w", err)
	}
	rec.PasswordBcrypt = string(hash)
	if err := f.add(rec); err != nil {
		return err
	}
	if err := f.write(); err != nil {
		return err
	}
	fmt.Fprintf(o.Stdout, "added user %q (id %q, role %q) to %s\n", username, rec.ID, rec.Role, path)
	return nil
}

func usersRemove(args []string, o IO) error {
	fl, envFile := newFlags("users remove", "users remove [options] USERNAME", o.Stderr)
	fileOf := usersFileFlag(fl, envFile, o)
	pos, err := parse(fl, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("users remove takes one USERNAME, got %d arguments", len(pos))
	}
	path, err := fileOf()
	if err != nil {
		return err
	}
	f, err := readUsersFile(path, false)
	if err != nil {
		return err
	}
	i := f.index(pos[0])
	if i < 0 {
		return fmt.Errorf("no user %q in %s", pos[0], path)
	}
	if len(f.records) == 1 {
		return fmt.Errorf("%q is the last user of %s: the server refuses an empty users file", pos[0], path)
	}
	f.raw = append(f.raw[:i], f.raw[i+1:]...)
	f.records = append(f.records[:i], f.records[i+1:]...)
	if err := f.write(); err != nil {
		return err
	}
	fmt.Fprintf(o.Stdout, "removed user %q from %s\n", pos[0], path)
	return nil
}

func usersList(args []string, o IO) error {
	fl, envFile := newFlags("users list", "users list [options]", o.Stderr)
	fileOf := usersFileFlag(fl, envFile, o)
	pos, err := parse(fl, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("users list takes no arguments, got %q", pos)
	}
	path, err := fileOf()
	if err != nil {
		return err
	}
	f, err := readUsersFile(path, false)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(o.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tID\tROLE\tNAME\tEMAIL\tGROUPS\tPERMISSIONS\tBCRYPT COST")
	for _, r := range f.records {
		cost, err := bcrypt.Cost([]byte(r.PasswordBcrypt))
		costText := fmt.Sprint(cost)
		if err != nil {
			costText = "not a bcrypt hash"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Username, r.ID, r.Role, r.Name, r.Email,
			strings.Join(r.Groups, ","), strings.Join(r.Permissions, ","), costText)
	}
	return tw.Flush()
}

// usersFile is a USERS_FILE in memory. raw keeps each entry as written, so fields this
// version does not know survive an add or a remove.
type usersFile struct {
	path    string
	mode    fs.FileMode
	uid     int // -1: a new file
	gid     int
	raw     []json.RawMessage
	records []users.Record
}

// readUsersFile reads path; a missing file is an empty one when create is set.
func readUsersFile(path string, create bool) (*usersFile, error) {
	f := &usersFile{path: path, mode: newUsersFileMode, uid: -1, gid: -1}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read users file: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	f.mode = st.Mode().Perm()
	if uid, gid, ok := fileOwner(st); ok {
		f.uid, f.gid = uid, gid
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return f, nil
	}
	if err := json.Unmarshal(b, &f.raw); err != nil {
		return nil, fmt.Errorf("users file %s is not a JSON array of users: %w", path, err)
	}
	for i, r := range f.raw {
		var rec users.Record
		if err := json.Unmarshal(r, &rec); err != nil {
			return nil, fmt.Errorf("users file %s: entry %d: %w", path, i+1, err)
		}
		f.records = append(f.records, rec)
	}
	return f, nil
}

func (f *usersFile) index(username string) int {
	for i, r := range f.records {
		if r.Username == username {
			return i
		}
	}
	return -1
}

// check refuses a record the server would refuse next to the file's (users.NewStore's
// rules but the hash, which add makes): an empty id, a username or id already taken. The
// file's own entries must be valid too: a broken file is not made worse.
func (f *usersFile) check(rec users.Record) error {
	if rec.ID == "" {
		return usagef("empty -id")
	}
	for i, r := range f.records {
		if _, err := bcrypt.Cost([]byte(r.PasswordBcrypt)); err != nil || r.Username == "" || r.ID == "" {
			return fmt.Errorf("users file %s: entry %d is invalid (no username, id or bcrypt hash): fix it first", f.path, i+1)
		}
		switch {
		case r.Username == rec.Username:
			return fmt.Errorf("user %q already exists in %s (remove it first to change it)", rec.Username, f.path)
		case r.ID == rec.ID:
			return fmt.Errorf("users file %s: user %q has the id %q already (duplicate id): pass another -id", f.path, r.Username, rec.ID)
		}
	}
	return nil
}

// add appends rec, which check has accepted.
func (f *usersFile) add(rec users.Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode user: %w", err)
	}
	f.raw = append(f.raw, b)
	f.records = append(f.records, rec)
	return nil
}

// write replaces the file atomically: a temporary file in the same directory with the
// old file's mode and owner, synced, renamed over it, and the directory synced. A crash
// leaves the old file or the new one, never half of one; the server never reads a
// partial file.
func (f *usersFile) write() (err error) {
	body, err := json.MarshalIndent(f.raw, "", "  ")
	if err != nil {
		return fmt.Errorf("encode users file: %w", err)
	}
	body = append(body, '\n')
	dir := filepath.Dir(f.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(f.mode); err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	// Run as root on the service user's file, the new file must stay the service's.
	if f.uid >= 0 && (f.uid != os.Geteuid() || f.gid != os.Getegid()) {
		if err := tmp.Chown(f.uid, f.gid); err != nil {
			return fmt.Errorf("write users file: keep its owner: %w", err)
		}
	}
	if _, err := tmp.Write(body); err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("write users file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename's durability; not every filesystem supports it
		_ = d.Close()
	}
	return nil
}

// fdReader is an input that may be a terminal.
type fdReader interface {
	io.Reader
	Fd() uintptr
}

// readPassword asks twice on a terminal, without echo; otherwise it reads the first line
// of stdin (a pipe from a secret store or a here-document).
func readPassword(o IO, username string) ([]byte, error) {
	var pw []byte
	if in, ok := o.Stdin.(fdReader); ok && term.IsTerminal(int(in.Fd())) {
		fd := int(in.Fd())
		fmt.Fprintf(o.Stderr, "Password for %s: ", username)
		first, err := term.ReadPassword(fd)
		fmt.Fprintln(o.Stderr)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(o.Stderr, "Again: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(o.Stderr)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		if !bytes.Equal(first, again) {
			return nil, errors.New("the passwords differ")
		}
		pw = first
	} else {
		line, err := bufio.NewReader(io.LimitReader(o.Stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read password from stdin: %w", err)
		}
		pw = []byte(strings.TrimRight(line, "\r\n"))
	}
	switch {
	case len(pw) == 0:
		return nil, errors.New("empty password (pipe it on stdin or type it at the prompt)")
	case len(pw) < minPasswordBytes:
		return nil, fmt.Errorf("password too short: at least %d bytes", minPasswordBytes)
	case len(pw) > maxPasswordBytes:
		return nil, fmt.Errorf("password too long: bcrypt uses at most %d bytes", maxPasswordBytes)
	}
	return pw, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
