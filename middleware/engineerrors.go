package middleware

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/jetsocket/jetsocket/server/errs"
)

// maxEngineMessage bounds how much of go-socket.io's error text is kept: it is one line
// ("invalid sid value: <sid>", "read: invalid payload").
const maxEngineMessage = 256

// EngineErrors turns go-socket.io's plain-text refusals (http.Error: 400 "invalid sid
// value: ...", 400 "read: invalid payload", 400 "invalid content-type", 502 ...) into our
// JSON error body {error, message} with the same status, so a polling client's every
// refusal is typed like the rest of the API. Answers already under way (a long-poll that
// has written its payload) and non-text answers pass through untouched.
func EngineErrors() gin.HandlerFunc {
	return func(c *gin.Context) {
		w := &engineErrorWriter{ResponseWriter: c.Writer}
		c.Writer = w
		c.Next()
		w.finish(c.Request)
	}
}

type engineErrorWriter struct {
	gin.ResponseWriter
	status int             // set while an error answer is being captured
	code   string          // the error code, when known before the text
	text   strings.Builder // the captured text
}

func (w *engineErrorWriter) WriteHeader(code int) {
	if code >= 400 && w.status == 0 && !w.ResponseWriter.Written() &&
		strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		w.status = code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *engineErrorWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		return w.ResponseWriter.Write(b)
	}
	if room := maxEngineMessage - w.text.Len(); room > 0 {
		w.text.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}

func (w *engineErrorWriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// finish writes the captured answer as JSON. A websocket request for a session that is
// already on a websocket gets no answer at all from the library (its session hands the
// request to a conn that serves nothing): a bare 200 that the client cannot read as a
// refusal. It is answered 400 here.
func (w *engineErrorWriter) finish(r *http.Request) {
	if w.status == 0 && !w.ResponseWriter.Written() && r.URL.Query().Get("sid") != "" &&
		strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		w.status, w.code = http.StatusBadRequest, errs.CodeTransportMismatch
		w.text.WriteString("this session is already on websocket")
	}
	if w.status == 0 {
		return
	}
	msg := strings.TrimSpace(w.text.String())
	if msg == "" {
		msg = http.StatusText(w.status)
	}
	code := w.code
	switch {
	case code != "":
	case strings.HasPrefix(msg, "invalid sid"):
		code = errs.CodeInvalidSid
	case strings.HasPrefix(msg, "invalid transport"):
		code = errs.CodeInvalidTransport
	case w.status >= 500:
		code = errs.CodeTransportError
	default:
		code = errs.CodeBadRequest
	}
	w.Header().Del("Content-Length")
	errs.WriteStatus(w.ResponseWriter, w.status, code, msg)
}
