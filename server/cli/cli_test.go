package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/joho/godotenv"
	"golang.org/x/crypto/bcrypt"

	"github.com/jetsocket/jetsocket/server/config"
	"github.com/jetsocket/jetsocket/server/users"
	"github.com/jetsocket/jetsocket/tokens"
)

const testSecret = "cli-test-secret-0123456789abcdef0123456789"

// result is one in-process run of the binary's command line.
type result struct {
	code           int
	stdout, stderr string
	served         []string // the server's args, when Main chose to serve
}

// run runs Main as main.go does, with env as the whole environment and stdin piped. The
// working directory is an empty one, so no .env of the repository leaks in.
func run(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	var r result
	serve := func(_ context.Context, a []string) error {
		r.served = append([]string{}, a...)
		if slices.Contains(a, "-fail") {
			return errors.New("listen: boom")
		}
		return nil
	}
	o := IO{Getenv: func(k string) string { return env[k] }, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut}
	r.code = Main(context.Background(), args, o, serve)
	r.stdout, r.stderr = out.String(), errOut.String()
	return r
}

func inTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Chdir(dir)
	return dir
}

func TestNoCommandServes(t *testing.T) {
	inTempDir(t)
	if r := run(t, nil, ""); r.code != 0 || r.served == nil || len(r.served) != 0 {
		t.Fatalf("no args: %+v", r)
	}
	if r := run(t, nil, "", "-env-file", "x.env"); r.code != 0 || !slices.Equal(r.served, []string{"-env-file", "x.env"}) {
		t.Fatalf("server flags: %+v", r)
	}
	if r := run(t, nil, "", "-fail"); r.code != ExitError || !strings.Contains(r.stderr, "listen: boom") {
		t.Fatalf("serve error: %+v", r)
	}
}

func TestHelpListsCommandsAndUnknownCommandFails(t *testing.T) {
	inTempDir(t)
	for _, h := range []string{"-h", "--help", "help"} {
		r := run(t, nil, "", h)
		if r.code != 0 || r.served != nil {
			t.Fatalf("%s: %+v", h, r)
		}
		for _, c := range []string{"users", "secrets", "token", "config", "-env-file"} {
			if !strings.Contains(r.stdout, c) {
				t.Errorf("%s: usage does not name %s:\n%s", h, c, r.stdout)
			}
		}
	}
	r := run(t, nil, "", "userz", "add")
	if r.code != ExitUsage || r.served != nil || !strings.Contains(r.stderr, `unknown command "userz"`) {
		t.Fatalf("unknown command: %+v", r)
	}
	for _, args := range [][]string{
		{"users"}, {"users", "frob"}, {"config"}, {"config", "chek"}, {"secrets", "extra"},
		{"secrets", "-bogus"}, {"token"}, {"users", "list", "-nope"},
	} {
		if r := run(t, nil, "", args...); r.code != ExitUsage || r.stderr == "" {
			t.Errorf("%q: %+v", args, r)
		}
	}
}

func TestSecretsAreFreshAndAcceptedByProduction(t *testing.T) {
	inTempDir(t)
	a, b := run(t, nil, "", "secrets"), run(t, nil, "", "secrets")
	if a.code != 0 || b.code != 0 {
		t.Fatalf("%+v %+v", a, b)
	}
	va, err := godotenv.Unmarshal(a.stdout)
	if err != nil {
		t.Fatal(err)
	}
	vb, _ := godotenv.Unmarshal(b.stdout)
	for _, k := range []string{"JWT_SECRET", "APP_SECRET", "ENCRYPTION_MASTER_KEY"} {
		if va[k] == "" || va[k] == vb[k] {
			t.Errorf("%s: %q then %q", k, va[k], vb[k])
		}
	}
	if key, err := base64.StdEncoding.DecodeString(va["ENCRYPTION_MASTER_KEY"]); err != nil || len(key) != 32 {
		t.Errorf("master key: %d bytes, %v", len(key), err)
	}
	env := map[string]string{"APP_ENV": "production", "APP_ID": "1", "APP_KEY": "k", "USERS_FILE": "/x"}
	for k, v := range va {
		env[k] = v
	}
	cfg, _, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("production refuses generated secrets: %v", err)
	}
	if len(cfg.EncryptionMasterKey) != 32 || len(cfg.JWTSecret) < tokens.MinSecretBytes {
		t.Fatalf("%+v", cfg)
	}
}

// addUser runs `users add` with a low cost (bcrypt under -race is slow).
func addUser(t *testing.T, file, username, password string, extra ...string) result {
	t.Helper()
	return run(t, nil, password+"\n", append([]string{"users", "add", "-file", file, "-cost", "10", username}, extra...)...)
}

func TestUsersAddWritesWhatTheServerLoads(t *testing.T) {
	dir := inTempDir(t)
	file := filepath.Join(dir, "users.json")
	r := addUser(t, file, "dana", "dana-password-1", "-role", "admin", "-name", "Dana", "-groups", "ops, staff", "-permissions", "encrypted-channels")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	if r2 := addUser(t, file, "eve", "eve-password-1", "-id", "42"); r2.code != 0 {
		t.Fatalf("%+v", r2)
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new file mode %v, %v", st.Mode(), err)
	}
	store, err := users.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	u, err := store.Authenticate("dana", "dana-password-1")
	if err != nil || u.ID != "dana" || u.Role != "admin" || u.Name != "Dana" || !slices.Equal(u.Groups, []string{"ops", "staff"}) || u.Permissions[0] != "encrypted-channels" {
		t.Fatalf("%+v %v", u, err)
	}
	if u, err := store.Authenticate("eve", "eve-password-1"); err != nil || u.ID != "42" || u.Role != "user" {
		t.Fatalf("%+v %v", u, err)
	}
	b, _ := os.ReadFile(file)
	if strings.Contains(string(b), "dana-password-1") {
		t.Fatal("plain password in the file")
	}
	assertNoTempFiles(t, dir)
}

func TestUsersAddDefaultCost(t *testing.T) {
	file := filepath.Join(inTempDir(t), "u.json")
	if r := run(t, nil, "long-enough\n", "users", "add", "-file", file, "zed"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	f, err := readUsersFile(file, false)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := bcrypt.Cost([]byte(f.records[0].PasswordBcrypt)); err != nil || c != DefaultBcryptCost {
		t.Fatalf("cost %d, %v", c, err)
	}
}

func TestUsersAddRefusals(t *testing.T) {
	dir := inTempDir(t)
	file := filepath.Join(dir, "users.json")
	if r := addUser(t, file, "dana", "dana-password-1"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	before, _ := os.ReadFile(file)
	cases := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"duplicate username", "other-password\n", []string{"-file", file, "dana"}, ExitError, "already exists"},
		{"duplicate id", "other-password\n", []string{"-file", file, "-id", "dana", "dan"}, ExitError, "duplicate id"},
		{"password as argument", "", []string{"-file", file, "fay", "hunter22hunter"}, ExitUsage, "never an argument"},
		{"no username", "pw-pw-pw-pw\n", []string{"-file", file}, ExitUsage, "one USERNAME"},
		{"empty password", "", []string{"-file", file, "fay"}, ExitError, "empty password"},
		{"short password", "short\n", []string{"-file", file, "fay"}, ExitError, "too short"},
		{"long password", strings.Repeat("x", 73) + "\n", []string{"-file", file, "fay"}, ExitError, "too long"},
		{"low cost", "pw-pw-pw-pw\n", []string{"-file", file, "-cost", "4", "fay"}, ExitUsage, "-cost"},
		{"spaces in name", "pw-pw-pw-pw\n", []string{"-file", file, " fay"}, ExitUsage, "spaces"},
		{"no file", "pw-pw-pw-pw\n", []string{"fay"}, ExitUsage, "USERS_FILE"},
		{"file in a missing directory", "pw-pw-pw-pw\n", []string{"-file", filepath.Join(dir, "nope", "u.json"), "-cost", "10", "fay"}, ExitError, "write users file"},
	}
	for _, c := range cases {
		r := run(t, nil, c.stdin, append([]string{"users", "add"}, c.args...)...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: code %d, stderr %q; want %d and %q", c.name, r.code, r.stderr, c.code, c.want)
		}
	}
	if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
		t.Fatal("a refused add changed the file")
	}
	assertNoTempFiles(t, dir)
}

func TestUsersFileThatCannotBeRead(t *testing.T) {
	dir := inTempDir(t)
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"username":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	invalid := filepath.Join(dir, "invalid.json")
	if err := os.WriteFile(invalid, []byte(`[{"username":"x","password_bcrypt":"plain","id":"1"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"users", "add", "-file", bad, "-cost", "10", "fay"},
		{"users", "add", "-file", invalid, "-cost", "10", "fay"},
		{"users", "list", "-file", bad},
		{"users", "remove", "-file", bad, "x"},
		{"users", "list", "-file", dir}, // a directory
		{"users", "list", "-file", filepath.Join(dir, "missing.json")},
	} {
		r := run(t, nil, "pw-pw-pw-pw\n", args...)
		if r.code != ExitError || !strings.Contains(r.stderr, "users file") {
			t.Errorf("%q: %+v", args, r)
		}
	}
	if b, _ := os.ReadFile(bad); string(b) != `{"username":"x"}` {
		t.Fatalf("bad file rewritten: %s", b)
	}
}

func TestUsersKeepModeOwnerAndUnknownFields(t *testing.T) {
	dir := inTempDir(t)
	file := filepath.Join(dir, "users.json")
	hash, _ := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	body := `[{"username":"old","password_bcrypt":"` + string(hash) + `","id":"1","future_field":{"a":1}}]`
	if err := os.WriteFile(file, []byte(body), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0o640); err != nil { // umask-proof
		t.Fatal(err)
	}
	if r := addUser(t, file, "new", "new-password"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	st, _ := os.Stat(file)
	if st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v after add", st.Mode())
	}
	b, _ := os.ReadFile(file)
	if !strings.Contains(string(b), `"future_field"`) {
		t.Fatalf("unknown field lost:\n%s", b)
	}
	if r := run(t, nil, "", "users", "remove", "-file", file, "new"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	f, err := readUsersFile(file, false)
	if err != nil || len(f.records) != 1 || f.records[0].Username != "old" {
		t.Fatalf("%+v %v", f, err)
	}
}

func TestUsersRemoveAndList(t *testing.T) {
	dir := inTempDir(t)
	file := filepath.Join(dir, "users.json")
	// USERS_FILE from the .env file, as the server reads it.
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("USERS_FILE="+file+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"ann", "ben"} {
		if r := run(t, nil, u+"-password\n", "users", "add", "-cost", "10", u, "-role", "ops"); r.code != 0 {
			t.Fatalf("%+v", r)
		}
	}
	r := run(t, nil, "", "users", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "ann") || !strings.Contains(r.stdout, "ben") || !strings.Contains(r.stdout, "ops") {
		t.Fatalf("%+v", r)
	}
	if strings.Contains(r.stdout, "$2a$") || strings.Contains(r.stdout, "$2b$") {
		t.Fatalf("list shows hashes:\n%s", r.stdout)
	}
	if r := run(t, nil, "", "users", "remove", "nobody"); r.code != ExitError || !strings.Contains(r.stderr, `no user "nobody"`) {
		t.Fatalf("%+v", r)
	}
	if r := run(t, nil, "", "users", "remove", "ann"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	if r := run(t, nil, "", "users", "remove", "ben"); r.code != ExitError || !strings.Contains(r.stderr, "last user") {
		t.Fatalf("%+v", r)
	}
	if r := run(t, nil, "", "users", "list"); r.code != 0 || strings.Contains(r.stdout, "ann") || !strings.Contains(r.stdout, "ben") {
		t.Fatalf("%+v", r)
	}
	assertNoTempFiles(t, dir)
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestToken(t *testing.T) {
	dir := inTempDir(t)
	file := filepath.Join(dir, "users.json")
	if r := addUser(t, file, "dana", "dana-password-1", "-id", "7", "-role", "admin", "-groups", "ops"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	env := map[string]string{"JWT_SECRET": testSecret, "USERS_FILE": file, "JWT_ISSUER": "iss", "JWT_AUDIENCE": "aud"}
	tm, err := tokens.NewManager(tokens.Config{Secret: []byte(testSecret), Issuer: "iss", Audience: "aud", TTL: 1, Leeway: 0})
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, env, "", "token", "dana")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	c, err := tm.Verify(strings.TrimSpace(r.stdout))
	if err != nil || c.Subject != "7" || c.Role != "admin" || c.Groups[0] != "ops" {
		t.Fatalf("%+v %v", c, err)
	}
	r = run(t, env, "", "token", "-sub", "svc-1", "-role", "moderator", "-ttl", "2m")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	c, err = tm.Verify(strings.TrimSpace(r.stdout))
	if err != nil || c.Subject != "svc-1" || c.Role != "moderator" || c.Expiry().Sub(c.IssuedAt.Time) != 120e9 {
		t.Fatalf("%+v %v", c, err)
	}
	// Development without USERS_FILE: the demo users, as the server.
	r = run(t, map[string]string{"JWT_SECRET": testSecret}, "", "token", "alice")
	devTM, _ := tokens.NewManager(tokens.Config{Secret: []byte(testSecret), TTL: 1})
	if c, err := devTM.Verify(strings.TrimSpace(r.stdout)); r.code != 0 || err != nil || c.Subject != "1" || c.Role != "admin" {
		t.Fatalf("%+v %+v %v", r, c, err)
	}
	for _, c := range []struct {
		env  map[string]string
		args []string
		code int
		want string
	}{
		{env, []string{"nobody"}, ExitError, `no user "nobody"`},
		{map[string]string{}, []string{"alice"}, ExitError, "JWT_SECRET is not set"},
		{map[string]string{"JWT_SECRET": "short"}, []string{"alice"}, ExitError, "JWT_SECRET"},
		{env, []string{"dana", "-sub", "x"}, ExitUsage, "not both"},
		{env, []string{"dana", "-role", "admin"}, ExitUsage, "go with -sub"},
		{env, []string{"-sub", "x", "-ttl", "-1s"}, ExitUsage, "-ttl"},
		{env, []string{"a", "b"}, ExitUsage, "one USERNAME"},
	} {
		r := run(t, c.env, "", append([]string{"token"}, c.args...)...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) || r.stdout != "" {
			t.Errorf("%q: %+v", c.args, r)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	dir := inTempDir(t)
	file := filepath.Join(dir, "users.json")
	if r := addUser(t, file, "dana", "dana-password-1"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	// Development: starts, and the production refusals are listed, every one of them.
	r := run(t, map[string]string{"ALLOWED_ORIGINS": "*"}, "", "config", "check")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	for _, v := range []string{"JWT_SECRET", "APP_ID", "APP_KEY", "APP_SECRET", "USERS_FILE", "ALLOWED_ORIGINS"} {
		if !strings.Contains(r.stdout, "config: "+v+": ") {
			t.Errorf("production refusal of %s not listed:\n%s", v, r.stdout)
		}
	}
	if r := run(t, nil, "", "config", "check", "-production"); r.code != ExitError || !strings.Contains(r.stderr, "production mode would refuse") {
		t.Fatalf("-production: %+v", r)
	}

	prod := map[string]string{
		"APP_ENV": "production", "JWT_SECRET": testSecret, "APP_ID": "1", "APP_KEY": "key",
		"APP_SECRET": "0123456789abcdef-app", "USERS_FILE": file, "REDIS_URL": "redis://:hunter2@redis:6379/0",
	}
	r = run(t, prod, "", "config", "check", "-production")
	if r.code != 0 || !strings.Contains(r.stdout, "ok: the server would start") || !strings.Contains(r.stdout, "without TLS_CERT_FILE") {
		t.Fatalf("%+v", r)
	}
	for _, secret := range []string{testSecret, "0123456789abcdef-app", "hunter2"} {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Fatalf("output shows a secret:\n%s", r.stdout)
		}
	}

	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range prod {
			m[a] = b
		}
		m[k] = v
		return m
	}
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`[]`), 0o600)
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{with("ADDR", "nope"), "config: ADDR"},
		{with("USERS_FILE", bad), "USERS_FILE"},
		{with("USERS_FILE", filepath.Join(dir, "missing.json")), "USERS_FILE"},
		{with("JWT_SECRET", ""), "JWT_SECRET"},
		{with("JWT_SECRET", "k1:"+testSecret+",k1:"+testSecret), "JWT_SECRET"},
	} {
		r := run(t, c.env, "", "config", "check")
		if r.code != ExitError || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: %+v", c.want, r)
		}
	}
	// Production with several refusals names them all.
	r = run(t, map[string]string{"APP_ENV": "production", "JWT_SECRET": testSecret}, "", "config", "check")
	if r.code != ExitError || !strings.Contains(r.stdout, "APP_KEY") || !strings.Contains(r.stdout, "USERS_FILE") {
		t.Fatalf("%+v", r)
	}
	// A malformed .env file is an error, as for the server.
	_ = os.WriteFile(filepath.Join(dir, "broken.env"), []byte("A='unterminated\n"), 0o600)
	if r := run(t, nil, "", "config", "check", "-env-file", filepath.Join(dir, "broken.env")); r.code != ExitError {
		t.Fatalf("broken .env: %+v", r)
	}
}

// The example production environment is what config check accepts once its blanks (the
// secrets, APP_KEY, the users file) are filled in, and names those blanks until then.
func TestProductionEnvExample(t *testing.T) {
	example, err := filepath.Abs(filepath.Join("..", "..", "deploy", "production.env.example"))
	if err != nil {
		t.Fatal(err)
	}
	dir := inTempDir(t)
	r := run(t, nil, "", "config", "check", "-env-file", example)
	for _, v := range []string{"JWT_SECRET", "APP_SECRET", "APP_KEY"} {
		if r.code != ExitError || !strings.Contains(r.stdout+r.stderr, "config: "+v) {
			t.Errorf("blank %s not named: %+v", v, r)
		}
	}
	file := filepath.Join(dir, "users.json")
	if r := addUser(t, file, "ops", "ops-password"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	env, err := godotenv.Unmarshal(run(t, nil, "", "secrets").stdout)
	if err != nil {
		t.Fatal(err)
	}
	env["APP_KEY"], env["USERS_FILE"] = "example-key", file
	r = run(t, env, "", "config", "check", "-production", "-env-file", example)
	if r.code != 0 || !strings.Contains(r.stdout, "APP_ENV   production") || !strings.Contains(r.stdout, "redis://") {
		t.Fatalf("%+v", r)
	}
}
