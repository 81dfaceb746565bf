package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jetsocket/jetsocket/server"
	"github.com/jetsocket/jetsocket/server/config"
	"github.com/jetsocket/jetsocket/server/users"
	"github.com/jetsocket/jetsocket/tokens"
)

// maxTokenTTL matches JWT_TTL's upper bound.
const maxTokenTTL = 30 * 24 * time.Hour

func runToken(_ context.Context, args []string, o IO) error {
	fl, envFile := newFlags("token", "token [options] USERNAME | token -sub ID [options]\n\nPrints a token signed with the configured JWT_SECRET (the first, with JWT_SECRET\nrotation), JWT_ISSUER and JWT_AUDIENCE, for testing. USERNAME is looked up in\nUSERS_FILE (the demo users in development without one); -sub makes a token for any\nsubject with the claims the options give.", o.Stderr)
	sub := fl.String("sub", "", "the subject (user id) of a token for no user of the file")
	name := fl.String("name", "", "with -sub: name claim")
	email := fl.String("email", "", "with -sub: email claim")
	role := fl.String("role", "", "with -sub: role claim")
	groups := fl.String("groups", "", "with -sub: comma-separated groups")
	perms := fl.String("permissions", "", "with -sub: comma-separated permissions")
	ttl := fl.Duration("ttl", 0, "lifetime (default: JWT_TTL)")
	pos, err := parse(fl, args)
	if err != nil {
		return err
	}
	switch {
	case *sub == "" && len(pos) != 1:
		return usagef("token takes one USERNAME, or -sub ID")
	case *sub != "" && len(pos) != 0:
		return usagef("token takes USERNAME or -sub, not both")
	case *ttl < 0 || *ttl > maxTokenTTL || (*ttl != 0 && *ttl < time.Second):
		return usagef("-ttl %s: must be from 1s to %s", *ttl, maxTokenTTL)
	case *sub == "" && (*name != "" || *email != "" || *role != "" || *groups != "" || *perms != ""):
		return usagef("-name, -email, -role, -groups and -permissions go with -sub; a user's claims come from the users file")
	}
	getenv, err := server.EnvWithDotenv(*envFile, o.Getenv)
	if err != nil {
		return err
	}
	cfg, _, err := config.Load(getenv)
	if err != nil {
		return err
	}
	if cfg.JWTSecretGenerated {
		return errors.New("JWT_SECRET is not set: the server would sign with a random secret of its own, and refuse this token")
	}
	u := tokens.User{ID: *sub, Name: *name, Email: *email, Role: *role, Groups: splitList(*groups), Permissions: splitList(*perms)}
	if *sub == "" {
		if u, err = lookupUser(cfg, pos[0]); err != nil {
			return err
		}
	}
	if *ttl == 0 {
		*ttl = cfg.JWTTTL
	}
	tm, err := tokens.NewManager(tokens.Config{
		Secrets: cfg.JWTSecrets, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, TTL: *ttl, Leeway: cfg.JWTLeeway,
	})
	if err != nil {
		return err
	}
	tok, exp, err := tm.Issue(u)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Stderr, "token for sub %q, expires %s\n", u.ID, exp.UTC().Format(time.RFC3339))
	_, err = fmt.Fprintln(o.Stdout, tok)
	return err
}

// lookupUser finds username where the server would: USERS_FILE, or the demo users.
func lookupUser(cfg *config.Config, username string) (tokens.User, error) {
	records := users.Demo
	where := "the demo users (USERS_FILE is not set)"
	if cfg.UsersFile != "" {
		f, err := readUsersFile(cfg.UsersFile, false)
		if err != nil {
			return tokens.User{}, err
		}
		records, where = f.records, cfg.UsersFile
	}
	for _, r := range records {
		if r.Username == username {
			return tokens.User{ID: r.ID, Name: r.Name, Email: r.Email, Role: r.Role, Groups: r.Groups, Permissions: r.Permissions}, nil
		}
	}
	return tokens.User{}, fmt.Errorf("no user %q in %s", username, where)
}
