package eio3

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzHandOffPayload feeds arbitrary polling bodies, text and binary, through the
// Engine.IO payload decoder the way a POST during an upgrade is decoded (handOff): it must
// answer 200 with every packet within the frame limit, or 400, and never panic or hang.
func FuzzHandOffPayload(f *testing.F) {
	for _, seed := range []string{
		`20:42["jetsocket:ping"]`, `1:2`, `6:2hello`, `2:40`, "", "0:", "999:zz", "-5:42", "zz",
		"99999999999999999999999:42", "10:b4!!!!@@@@", "8:b4aGVsbG8=", `5:42[]` + `3:41`,
		"\x00\x09\xff4hello", "\x01\x03\xff\x04ab", "\x00\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\xff4",
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	const maxFrame = 256
	f.Fuzz(func(t *testing.T, body []byte, binary bool) {
		c := &graceConn{handoff: newHandoff(handoffLimits{packets: 1 << 20, bytes: 1 << 30}), maxFrame: maxFrame}
		req := httptest.NewRequest(http.MethodPost, "/?EIO=3&transport=polling&sid=S", bytes.NewReader(body))
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		if binary {
			req.Header.Set("Content-Type", "application/octet-stream")
		}
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.handOff(rec, req, "S")
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second): // a hang, not a slow answer
			t.Fatalf("handOff hung on %q (binary %v)", body, binary)
		}
		switch rec.Code {
		case http.StatusOK:
			for {
				p, ok := c.handoff.pop("S")
				if !ok {
					break
				}
				if len(p.data) > maxFrame {
					t.Fatalf("packet of %d bytes handed off, limit %d", len(p.data), maxFrame)
				}
			}
		case http.StatusBadRequest:
			if c.handoff.len() != 0 {
				t.Fatal("a refused POST handed packets off")
			}
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
	})
}
