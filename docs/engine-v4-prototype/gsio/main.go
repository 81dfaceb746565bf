//go:build ignore

// Command gsio serves socket.io v4 (socket.io-client 2.x) over go-socket.io's Engine.IO v3
// engine with Jetsocket's transports (copied into engine3), and the shared scratch
// socket.io layer (sio): the engine-only baseline for the candidates.
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/googollee/go-socket.io/engineio"
	"github.com/googollee/go-socket.io/engineio/session"

	"scratch17/gsio/engine3"
	"scratch17/sio"
)

type sess struct {
	c engineio.Conn
	q url.Values
}

func (e *sess) Send(p string) {
	w, err := e.c.NextWriter(session.TEXT)
	if err != nil {
		return
	}
	_, _ = io.WriteString(w, p)
	_ = w.Close()
}
func (e *sess) Close()            { _ = e.c.Close() }
func (e *sess) Query() url.Values { return e.q }

func main() {
	addr := flag.String("addr", "127.0.0.1:8092", "")
	flag.Parse()
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50) // as Jetsocket's main.go
	}
	srv, err := sio.NewServer(os.Getenv("JWT_SECRET"), []time.Duration{0, 200 * time.Millisecond, time.Second, 3 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	ids := engine3.NewIDs()
	eng := engineio.NewServer(&engineio.Options{
		PingInterval: 25 * time.Second, PingTimeout: 60 * time.Second,
		Transports: engine3.Transports(64 << 10), SessionIDGenerator: ids,
	})
	go func() {
		for {
			c, err := eng.Accept()
			if err != nil {
				return
			}
			ids.Accepted(c.ID())
			go serve(srv, eng, c)
		}
	}()
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv.CheckHandshake(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sid := r.URL.Query().Get("sid"); sid != "" {
			ids.WaitReady(sid, r.Context().Done())
		}
		eng.ServeHTTP(w, r)
	})))
	mux.HandleFunc("/debug/mem", func(w http.ResponseWriter, r *http.Request) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		_ = json.NewEncoder(w).Encode(map[string]any{"heap_inuse": m.HeapInuse, "heap_alloc": m.HeapAlloc, "stack_inuse": m.StackInuse, "sys": m.Sys, "goroutines": runtime.NumGoroutine(), "sockets": srv.Count()})
	})
	log.Fatal(http.ListenAndServe(*addr, mux))
}

func serve(srv *sio.Server, eng *engineio.Server, c engineio.Conn) {
	defer eng.Remove(c.ID())
	u := c.URL()
	sc := srv.Open(&sess{c: c, q: u.Query()})
	sc.OnMessage("0") // a 2.x client is connected to "/" without sending CONNECT
	for {
		_, r, err := c.NextReader()
		if err != nil {
			break
		}
		b, err := io.ReadAll(io.LimitReader(r, 64<<10))
		_ = r.Close()
		if err != nil {
			break
		}
		sc.OnMessage(string(b))
	}
	sc.OnClose()
	_ = c.Close()
}
