//go:build ignore

// Command loadgo opens N idle websocket-only socket.io connections, EIO=3 (socket.io
// 2.x framing) or EIO=4 (socket.io v5: the client sends CONNECT), with the same Go code
// for both, so that connects per second compare servers rather than JS client versions.
// It prints "connected <n> failed <f> seconds <s>", then holds the connections until
// stdin closes.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

func mint(secret, sub string) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	now := time.Now().Unix()
	p, _ := json.Marshal(map[string]any{"sub": sub, "iat": now, "exp": now + 3600})
	in := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(in))
	return in + "." + enc.EncodeToString(m.Sum(nil))
}

func main() {
	addr := flag.String("addr", "", "host:port")
	eio := flag.Int("eio", 4, "3 or 4")
	n := flag.Int("n", 2000, "")
	inflight := flag.Int("inflight", 100, "")
	secret := flag.String("secret", "", "")
	flag.Parse()
	var next, failed atomic.Int64
	var mu sync.Mutex
	var conns []*websocket.Conn
	dialer := websocket.Dialer{HandshakeTimeout: 20 * time.Second}
	// Spread over loopback source addresses, as bench/ does, so ports do not run out.
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *inflight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(*n) {
					return
				}
				c, err := connect(&dialer, *addr, *eio, mint(*secret, fmt.Sprint("load-", i)), int(i))
				if err != nil {
					failed.Add(1)
					fmt.Fprintln(os.Stderr, err)
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	fmt.Printf("connected %d failed %d seconds %.3f\n", len(conns), failed.Load(), time.Since(t0).Seconds())
	// Keep the heartbeat up: answer v4 pings, send v3 pings.
	for _, c := range conns {
		go keep(c, *eio)
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
}

func connect(d *websocket.Dialer, addr string, eio int, token string, i int) (*websocket.Conn, error) {
	dd := *d
	dd.NetDial = func(network, a string) (net.Conn, error) {
		la := &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i%16))}
		return (&net.Dialer{LocalAddr: la}).Dial(network, a)
	}
	u := fmt.Sprintf("ws://%s/socket.io/?EIO=%d&transport=websocket&token=%s", addr, eio, token)
	c, _, err := dd.Dial(u, nil)
	if err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if eio == 4 {
		if _, _, err := c.ReadMessage(); err != nil { // open
			c.Close()
			return nil, err
		}
		if err := c.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
			c.Close()
			return nil, err
		}
	}
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			c.Close()
			return nil, err
		}
		if strings.HasPrefix(string(b), `42["jetsocket:connection_established"`) {
			_ = c.SetReadDeadline(time.Time{})
			return c, nil
		}
	}
}

func keep(c *websocket.Conn, eio int) {
	if eio == 3 {
		go func() {
			for range time.Tick(20 * time.Second) {
				_ = c.WriteMessage(websocket.TextMessage, []byte("2"))
			}
		}()
	}
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			return
		}
		if eio == 4 && string(b) == "2" {
			_ = c.WriteMessage(websocket.TextMessage, []byte("3"))
		}
	}
}
