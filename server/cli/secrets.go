package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"
)

// secretBytes is the entropy of each generated secret: 256 bits, the HMAC-SHA256 key
// size (JWT_SECRET, APP_SECRET) and the AES-256 key size (ENCRYPTION_MASTER_KEY).
const secretBytes = 32

func runSecrets(_ context.Context, args []string, o IO) error {
	fl, _ := newFlags("secrets", "secrets\n\nPrints fresh secrets in .env form, from the operating system's random source.\nAppend them to the server's environment file; they are never logged.", o.Stderr)
	pos, err := parse(fl, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("secrets takes no arguments, got %q", pos)
	}
	var buf [3][secretBytes]byte
	for i := range buf {
		if _, err := rand.Read(buf[i][:]); err != nil {
			return fmt.Errorf("random source: %w", err)
		}
	}
	// URL-safe base64 without padding for the HMAC keys: no character that a shell, a
	// systemd EnvironmentFile or a .env parser treats specially. The master key is
	// standard base64 because that is what ENCRYPTION_MASTER_KEY is defined as.
	_, err = fmt.Fprintf(o.Stdout, "# jetsocket secrets, generated %s\nJWT_SECRET=%s\nAPP_SECRET=%s\nENCRYPTION_MASTER_KEY=%s\n",
		time.Now().UTC().Format(time.RFC3339),
		base64.RawURLEncoding.EncodeToString(buf[0][:]),
		base64.RawURLEncoding.EncodeToString(buf[1][:]),
		base64.StdEncoding.EncodeToString(buf[2][:]))
	return err
}
