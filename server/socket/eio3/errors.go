package eio3

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/jetsocket/jetsocket/server/errs"
	"github.com/jetsocket/jetsocket/server/query"
)

// maxEngineMessage bounds how much of go-socket.io's error text is kept: it is one line
// ("invalid transport: ...", "read: invalid payload").
const maxEngineMessage = 256

// engineErrorWriter stands between go-socket.io and the client: the library answers
// its refusals and failures with http.Error, plain text. Those become our JSON body
// {error, message} with the same status, so a client's every refusal is typed like the
// rest of the API:
//
//   - a 4xx ("invalid transport: ...", "read: invalid payload", "invalid content-type")
//     is typed by its text (invalid_transport, else bad_request) and keeps it as its
//     message;
//   - a 5xx is an internal error message ("transport accept err: ...", a payload's read
//     error): it becomes transport_error with a fixed message, and its text is logged;
//   - a websocket request for a session that is already on a websocket gets no answer
//     at all from the library (its session hands the request to a conn that serves
//     nothing): it is answered 400 transport_mismatch.
//
// Answers already under way (a long-poll that has written its payload, a hijacked
// websocket) and non-text answers pass through untouched.
type engineErrorWriter struct {
	http.ResponseWriter
	log     *slog.Logger
	status  int // a captured error answer
	written bool
	text    strings.Builder
}

// Hijack lets the websocket transport take the connection.
func (w *engineErrorWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("eio3: the response writer cannot hijack")
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
	// A 5xx is captured even after an answer was written (gorilla's own refusal of a
	// websocket handshake, which the library follows with its 502): its text must not
	// follow it. A 4xx only while nothing was written.
	if w.status == 0 && strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") &&
		(code >= 500 || code >= 400 && !w.written) {
		w.status = code
		return
	}
	w.written = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *engineErrorWriter) Write(b []byte) (int, error) {
	if w.status != 0 {
		if room := maxEngineMessage - w.text.Len(); room > 0 {
			w.text.Write(b[:min(len(b), room)])
		}
		return len(b), nil
	}
	w.written = true
	return w.ResponseWriter.Write(b)
}

// finish writes a captured answer as JSON, unless an answer went out before it.
func (w *engineErrorWriter) finish(r *http.Request) {
	if w.status == 0 && !w.written && query.Get(r.URL.RawQuery, "sid") != "" &&
		strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		errs.Write(w.ResponseWriter, errs.New(errs.Invalid, errs.CodeTransportMismatch, "this session is already on websocket"))
		return
	}
	if w.status == 0 {
		return
	}
	msg := strings.TrimSpace(w.text.String())
	if w.status >= 500 {
		w.log.Warn("engine error", "status", w.status, "err", msg,
			"transport", query.Get(r.URL.RawQuery, "transport"), "method", r.Method)
	}
	if w.written {
		return
	}
	w.Header().Del("X-Content-Type-Options")
	w.Header().Del("Content-Length")
	switch {
	case w.status >= 500:
		errs.WriteStatus(w.ResponseWriter, w.status, errs.CodeTransportError, "the transport failed; reconnect")
	case strings.HasPrefix(msg, "invalid sid"):
		errs.WriteStatus(w.ResponseWriter, w.status, errs.CodeInvalidSid, msg)
	case strings.HasPrefix(msg, "invalid transport"):
		errs.WriteStatus(w.ResponseWriter, w.status, errs.CodeInvalidTransport, msg)
	default:
		if msg == "" {
			msg = http.StatusText(w.status)
		}
		errs.WriteStatus(w.ResponseWriter, w.status, errs.CodeBadRequest, msg)
	}
}
