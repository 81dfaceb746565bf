package eio3

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/jetsocket/jetsocket/server/errs"
)

// engineErrorWriter stands between go-socket.io and the client: the library answers its
// own failures with http.Error, a 500 or 502 whose text is an internal error message
// ("transport accept err: ...", a payload's read error). Those become our JSON 500/502
// with a fixed message; the text is logged. Its 400s are left to the HTTP layer's
// EngineErrors, which types them.
type engineErrorWriter struct {
	http.ResponseWriter
	log     *slog.Logger
	status  int // a captured 5xx
	written bool
	text    strings.Builder
}

// Hijack lets the websocket transport take the connection.
func (w *engineErrorWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("socket: the response writer cannot hijack")
	}
	w.written = true
	return h.Hijack()
}

func (w *engineErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes long-poll flushes through.
func (w *engineErrorWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *engineErrorWriter) WriteHeader(code int) {
	// Captured even after an answer was written (gorilla's own refusal of a websocket
	// handshake, which the library follows with its 502): its text must not follow it.
	if code >= 500 && w.status == 0 && strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		w.status = code
		return
	}
	w.written = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *engineErrorWriter) Write(b []byte) (int, error) {
	if w.status != 0 {
		if room := 256 - w.text.Len(); room > 0 {
			w.text.Write(b[:min(len(b), room)])
		}
		return len(b), nil
	}
	w.written = true
	return w.ResponseWriter.Write(b)
}

// finish writes a captured 5xx as JSON, unless an answer went out before it.
func (w *engineErrorWriter) finish(r *http.Request) {
	if w.status == 0 {
		return
	}
	w.log.Warn("engine error", "status", w.status, "err", strings.TrimSpace(w.text.String()),
		"transport", r.URL.Query().Get("transport"), "method", r.Method)
	if w.written {
		return
	}
	w.Header().Del("X-Content-Type-Options")
	w.Header().Del("Content-Length")
	errs.WriteStatus(w.ResponseWriter, w.status, errs.CodeTransportError, "the transport failed; reconnect")
}
