// Command secure-messaging is the app backend of the docs' "secure messaging" example: a
// page where logged-in users chat on an end-to-end encrypted Jetsocket channel.
//
// It is what a Pusher app backend is, for Jetsocket: it serves the page, authorizes the
// encrypted channel for its users (POST /jetsocket/auth, signed with APP_KEY/APP_SECRET as
// Pusher's authorizeChannel signs), and takes messages at POST /send-encrypted-message
// (Bearer JWT from Jetsocket's /login), which it encrypts with the channel key and triggers
// through Jetsocket's HTTP API, signed as Pusher's SDKs sign. Jetsocket only relays
// ciphertext; the page decrypts in the browser.
//
//	JETSOCKET_URL=http://localhost:8080 APP_ID=... APP_KEY=... APP_SECRET=... \
//	ENCRYPTION_MASTER_KEY=... JWT_SECRET=... go run ./example-client/secure-messaging
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "secure-messaging:", err)
		os.Exit(1)
	}
}

// run loads the configuration, serves until ctx ends, then shuts down gracefully.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	log := slog.New(slog.NewTextHandler(stdout, nil))
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	app, err := newApp(cfg, &http.Client{Timeout: 10 * time.Second}, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: app.routes(), ReadHeaderTimeout: 10 * time.Second}
	log.Info("secure-messaging listening", "addr", ln.Addr().String(), "jetsocket", cfg.JetsocketURL, "channel", cfg.Channel)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
