package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jetsocket/jetsocket/server"
	"github.com/jetsocket/jetsocket/server/config"
	"github.com/jetsocket/jetsocket/server/redact"
	"github.com/jetsocket/jetsocket/server/users"
	"github.com/jetsocket/jetsocket/tokens"
)

// prodStandIns stand in for a variable production refused, so that the check can go on
// and name the next refusal too (config.Load stops at the first). Each is a value
// production accepts; "" turns an option off.
var prodStandIns = map[string]string{
	"JWT_SECRET":      strings.Repeat("s", tokens.MinSecretBytes),
	"APP_ID":          "stand-in",
	"APP_KEY":         "stand-in",
	"APP_SECRET":      strings.Repeat("s", 16),
	"USERS_FILE":      "/stand-in",
	"ALLOWED_ORIGINS": "",
	"JWKS_URL":        "",
}

func runConfig(_ context.Context, args []string, o IO) error {
	if len(args) == 0 || args[0] != "check" {
		if len(args) > 0 && (isHelp(args[0])) {
			fmt.Fprint(o.Stderr, "Usage: jetsocket config check [-production] [-env-file FILE]\n")
			return nil
		}
		return usagef("the config command has one subcommand: check")
	}
	fl, envFile := newFlags("config check", "config check [options]\n\nLoads the environment (and .env) and checks it as the server does at start-up:\nevery variable, the JWT secrets, and USERS_FILE. It contacts neither Redis nor the\nidentity provider. Then it says what APP_ENV=production would refuse.\nExit status 1 when the configuration is invalid.", o.Stderr)
	strict := fl.Bool("production", false, "also fail when production mode would refuse this configuration")
	pos, err := parse(fl, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("config check takes no arguments, got %q", pos)
	}
	getenv, err := server.EnvWithDotenv(*envFile, o.Getenv)
	if err != nil {
		return err
	}
	cfg, warnings, err := checkConfig(getenv)
	if err != nil {
		if strings.EqualFold(strings.TrimSpace(getenv("APP_ENV")), config.Production) {
			// Name every refusal at once, not one per edit-and-retry.
			if refusals := productionRefusals(getenv); len(refusals) > 1 {
				fmt.Fprintln(o.Stdout, "APP_ENV=production refuses this configuration:")
				for _, r := range refusals {
					fmt.Fprintln(o.Stdout, "  -", r)
				}
				return fmt.Errorf("%d problems, the first: %w", len(refusals), err)
			}
		}
		return err
	}
	describe(o.Stdout, cfg)
	for _, w := range warnings {
		fmt.Fprintln(o.Stdout, "warning:", w)
	}
	if cfg.Production() {
		fmt.Fprintln(o.Stdout, "ok: the server would start with this configuration")
		return nil
	}
	refusals := productionRefusals(getenv)
	if len(refusals) == 0 {
		fmt.Fprintln(o.Stdout, "ok: the server would start; APP_ENV=production would accept this configuration too")
		return nil
	}
	fmt.Fprintln(o.Stdout, "ok: the server would start in development; APP_ENV=production would refuse:")
	for _, r := range refusals {
		fmt.Fprintln(o.Stdout, "  -", r)
	}
	if *strict {
		return fmt.Errorf("production mode would refuse this configuration (%d problems)", len(refusals))
	}
	return nil
}

// checkConfig does what the server does before it opens connections to anything:
// config.Load, the token manager, and the users file.
func checkConfig(getenv func(string) string) (*config.Config, []string, error) {
	cfg, warnings, err := config.Load(getenv)
	if err != nil {
		return nil, nil, err
	}
	if _, err := tokens.NewManager(tokens.Config{
		Secrets: cfg.JWTSecrets, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience,
		TTL: cfg.JWTTTL, Leeway: cfg.JWTLeeway, Mapping: cfg.ClaimMapping,
	}); err != nil {
		return nil, nil, fmt.Errorf("config: JWT_SECRET: %w", err)
	}
	if cfg.UsersFile != "" {
		if _, err := users.LoadFile(cfg.UsersFile); err != nil {
			return nil, nil, fmt.Errorf("config: USERS_FILE: %w", err)
		}
	} else {
		warnings = append(warnings, "USERS_FILE not set: the demo users alice, bob and carol can log in (development only)")
	}
	return cfg, warnings, nil
}

// productionRefusals loads the environment again with APP_ENV=production and lists each
// refusal, replacing a refused variable by a stand-in to find the next one. The users
// file's contents do not depend on the mode: checkConfig has read it already.
func productionRefusals(getenv func(string) string) []string {
	over := map[string]string{"APP_ENV": config.Production}
	var out []string
	for range len(prodStandIns) + 1 {
		_, _, err := config.Load(func(k string) string {
			if v, ok := over[k]; ok {
				return v
			}
			return getenv(k)
		})
		if err == nil {
			return out
		}
		out = append(out, err.Error())
		var ce *config.Error
		if !errors.As(err, &ce) {
			return out
		}
		standIn, ok := prodStandIns[ce.Var]
		if _, done := over[ce.Var]; !ok || done {
			return out
		}
		over[ce.Var] = standIn
	}
	return out
}

// describe prints what the server would run with, without secrets.
func describe(w io.Writer, c *config.Config) {
	tls := "off (a proxy in front terminates TLS)"
	if c.TLSCertFile != "" {
		tls = c.TLSCertFile
	}
	redis := "none (one node, in memory)"
	if c.RedisURL != "" {
		var list []string
		for _, u := range c.RedisURLs {
			list = append(list, redact.URL(u))
		}
		redis = strings.Join(list, ",")
	}
	usersFile := c.UsersFile
	if usersFile == "" {
		usersFile = "none (demo users)"
	}
	jwt := fmt.Sprintf("%d HS256 secret(s)", len(c.JWTSecrets))
	if c.JWTSecretGenerated {
		jwt = "random per start (JWT_SECRET not set)"
	}
	if c.JWKSURL != "" {
		jwt += ", provider keys from " + redact.URL(c.JWKSURL)
	}
	fmt.Fprintf(w, "APP_ENV   %s\nADDR      %s\nTLS       %s\nJWT       %s\nAPP_ID    %s\nUSERS     %s\nREDIS     %s\nWEBHOOKS  %d\n",
		c.Env, c.Addr, tls, jwt, c.AppID, usersFile, redis, len(c.WebhookURLs))
}
