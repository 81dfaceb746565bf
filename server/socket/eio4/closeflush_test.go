package eio4

import (
	"strings"
	"testing"
	"time"
)

// A message sent just before the server closes a polling session reaches the client,
// then the close packet in an answer of its own (as engine.io sends them; socket.io-client
// 4 drops a message a close in the same payload overtakes): even when the message had
// woken the waiting poll and the close came before the poll took it (it was dropped so,
// and the poll got a noop: a terminated connection never saw jetsocket:terminated).
func TestPollingCloseKeepsWhatWasSentJustBefore(t *testing.T) {
	ts, recs := newTestServerReading(t, Options{}, false)
	for i := range 50 { // the race is in the scheduling: try it many times
		sid := handshake(t, ts.URL)
		rec := <-recs
		first := make(chan string, 1)
		go func() {
			_, body := get(t, ts.URL+"/socket.io/?EIO=4&transport=polling&sid="+sid)
			first <- body
		}()
		waitWaiting(t, rec.s)
		if err := rec.s.Send([]byte(`2["bye",{}]`)); err != nil {
			t.Fatal(err)
		}
		_ = rec.s.Close()
		// What the client gets, poll after poll, until the close packet or a refusal.
		var seen []string
		for body := <-first; ; {
			seen = append(seen, body)
			if strings.HasSuffix(body, "1") || len(seen) == 3 {
				break
			}
			var code int
			code, body = get(t, ts.URL+"/socket.io/?EIO=4&transport=polling&sid="+sid)
			if code != 200 {
				seen = append(seen, "refused")
				break
			}
		}
		for _, b := range seen {
			if strings.Contains(b, "bye") && strings.HasSuffix(b, "\x1e1") {
				t.Fatalf("try %d: the message and the close packet in one answer %q: socket.io-client 4 drops such a message", i, b)
			}
		}
		all := strings.Join(seen, "\x1e")
		if !strings.Contains(all, "4"+`2["bye",{}]`+"\x1e1") {
			t.Fatalf("try %d: the client got %q, want the message then the close packet", i, seen)
		}
	}
}

func waitWaiting(t *testing.T, s *Session) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		waiting := s.wake != nil
		s.mu.Unlock()
		if waiting {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the poll is not waiting")
		}
		time.Sleep(time.Millisecond)
	}
}
