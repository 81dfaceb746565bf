package eio3

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Every answer of the library's own reaches the client as our JSON {error, message}.
func TestEngineErrorsAnswerJSON(t *testing.T) {
	type body = struct{ Error, Message string }
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		status   int
		wantJSON *body // nil: passed through
		wantBody string
		wsSID    bool // the request is a websocket upgrade for an existing session
	}{
		{
			name:     "library 400 for an unknown sid",
			handler:  func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "invalid sid value: abc", 400) },
			status:   400,
			wantJSON: &body{"invalid_sid", "invalid sid value: abc"},
		},
		{
			name:     "library 400 for an unknown transport",
			handler:  func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "invalid transport: <nil>", 400) },
			status:   400,
			wantJSON: &body{"invalid_transport", "invalid transport: <nil>"},
		},
		{
			name:     "library 400 for a broken payload",
			handler:  func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "read: invalid payload", 400) },
			status:   400,
			wantJSON: &body{"bad_request", "read: invalid payload"},
		},
		{
			name:     "library 502: a fixed message, the text only logged",
			handler:  func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "transport accept err: x", 502) },
			status:   502,
			wantJSON: &body{"transport_error", "the transport failed; reconnect"},
		},
		{
			name: "a long-poll that already wrote its payload keeps it, without the error text",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "2:40")
				http.Error(w, "read: illegal base64 data", 500)
			},
			status:   200,
			wantBody: "2:40",
		},
		{
			name: "JSON errors pass through",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(400)
				_, _ = io.WriteString(w, `{"error":"transport_mismatch","message":"m"}`)
			},
			status:   400,
			wantBody: `{"error":"transport_mismatch","message":"m"}`,
		},
		{
			name:     "an unanswered request that is not a websocket one is left alone",
			handler:  func(http.ResponseWriter, *http.Request) {},
			status:   200,
			wantBody: "",
		},
		{
			name:     "a websocket request for a websocket session, left unanswered",
			handler:  func(http.ResponseWriter, *http.Request) {},
			wsSID:    true,
			status:   400,
			wantJSON: &body{"transport_mismatch", "this session is already on websocket"},
		},
		{
			name:     "success passes through",
			handler:  func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") },
			status:   200,
			wantBody: "ok",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=3", nil)
			if tt.wsSID {
				req = httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=3&transport=websocket&sid=S", nil)
				req.Header.Set("Upgrade", "websocket")
			}
			ew := &engineErrorWriter{ResponseWriter: rec, log: slog.New(slog.DiscardHandler)}
			tt.handler(ew, req)
			ew.finish(req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d (%q)", rec.Code, tt.status, rec.Body)
			}
			if tt.wantJSON == nil {
				if rec.Body.String() != tt.wantBody {
					t.Fatalf("body %q, want %q", rec.Body, tt.wantBody)
				}
				return
			}
			var got body
			if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Fatalf("content type %q", ct)
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got != *tt.wantJSON {
				t.Fatalf("body %q, want %+v", rec.Body, *tt.wantJSON)
			}
		})
	}
}
