// Package errs is the small set of error kinds Jetsocket answers with, mapped once to
// HTTP statuses and JSON bodies. Internal details are logged, never sent.
package errs

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Kind classifies an error by what the client should do about it.
type Kind int

const (
	Internal     Kind = iota // a fault of ours
	Invalid                  // the request is malformed
	Unauthorized             // credentials or token missing or wrong
	Forbidden                // authenticated, but not allowed
	NotFound
	TooLarge
	RateLimited
	Unavailable // shutting down or not ready
	Timeout     // the client did not send its request in time
	MethodNotAllowed
)

// Status is the HTTP status for k.
func (k Kind) Status() int {
	switch k {
	case Invalid:
		return http.StatusBadRequest
	case Unauthorized:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case NotFound:
		return http.StatusNotFound
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case RateLimited:
		return http.StatusTooManyRequests
	case Unavailable:
		return http.StatusServiceUnavailable
	case Timeout:
		return http.StatusRequestTimeout
	case MethodNotAllowed:
		return http.StatusMethodNotAllowed
	default:
		return http.StatusInternalServerError
	}
}

// Error is an error with a kind, a stable machine-readable code and a message that is
// safe to show the client. Err, if any, is the cause, for logs only.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an *Error.
func New(kind Kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message}
}

// Body is the JSON body of every error answer.
type Body struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// From maps any error to the *Error a client may see: an *Error (or one it wraps) as
// it is, anything else as internal_error with err kept as the cause, for logs.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: Internal, Code: CodeInternal, Message: "internal server error", Err: err}
}

// Write answers an HTTP request with e: its status and the JSON Body. It is the one
// writer of HTTP error bodies; Gin handlers call it through handlers.Abort.
func Write(w http.ResponseWriter, e *Error) {
	WriteStatus(w, e.Kind.Status(), e.Code, e.Message)
}

// WriteStatus is Write for a refusal whose status another library chose (go-socket.io's
// 502s have no Kind): the same JSON Body, with that status.
func WriteStatus(w http.ResponseWriter, status int, code, message string) {
	b, _ := json.Marshal(Body{Error: code, Message: message})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
