package middleware

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

const bodyTimeout = 200 * time.Millisecond

// bodyServer serves ReadBody(100 bytes, bodyTimeout) in front of a handler that, after
// waiting past the timeout, answers the body's length and whether its request context
// is still alive.
func bodyServer(t *testing.T) *httptest.Server {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(ReadBody(100, bodyTimeout, slog.New(slog.DiscardHandler)))
	r.Any("/", func(c *gin.Context) {
		b, err := io.ReadAll(c.Request.Body)
		if err != nil {
			c.String(500, "read: %v", err)
			return
		}
		time.Sleep(3 * bodyTimeout) // a slow handler, or a long-poll
		alive := c.Request.Context().Err() == nil
		c.String(200, "%d %v", len(b), alive)
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func TestReadBodyPassesBodiesOnAndKeepsTheRequestAlive(t *testing.T) {
	srv := bodyServer(t)
	for _, tt := range []struct {
		method, body, want string
	}{
		{http.MethodPost, strings.Repeat("x", 100), "100 true"},
		{http.MethodPost, "", "0 true"},
		{http.MethodGet, "", "0 true"}, // no body: untouched (the long-poll)
	} {
		req, _ := http.NewRequest(tt.method, srv.URL, strings.NewReader(tt.body))
		if tt.body == "" {
			req.Body = nil
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		// "false" would mean the body's read deadline outlived it and cancelled the request.
		if res.StatusCode != 200 || string(b) != tt.want {
			t.Fatalf("%s %d bytes: %d %q, want %q", tt.method, len(tt.body), res.StatusCode, b, tt.want)
		}
	}
}

func TestReadBodyRefusals(t *testing.T) {
	srv := bodyServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, tt := range []struct {
		what, raw string
		status    int
		code      string
	}{
		{"declared too large", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n" + strings.Repeat("x", 101), 413, "too_large"},
		{"chunked too large", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n" + strings.Repeat("x", 101) + "\r\n0\r\n\r\n", 413, "too_large"},
		{"headers, then nothing", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n", 408, "request_timeout"},
		{"half a body, then nothing", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n" + strings.Repeat("x", 20), 408, "request_timeout"},
		{"malformed chunks", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "invalid_request"},
	} {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write([]byte(tt.raw))
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // only a server that never answers fails
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.what, err)
		}
		b, _ := io.ReadAll(res.Body)
		conn.Close()
		if res.StatusCode != tt.status || !strings.Contains(string(b), `"error":"`+tt.code+`"`) || !res.Close {
			t.Fatalf("%s: %d %q (close %v), want %d %s and the connection closed", tt.what, res.StatusCode, b, res.Close, tt.status, tt.code)
		}
	}
}
