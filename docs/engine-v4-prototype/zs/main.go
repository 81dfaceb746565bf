//go:build ignore

// Command zs serves socket.io v5 over zishang520's Engine.IO engine (servers/engine/v3),
// with the shared scratch socket.io layer (sio) on top.
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
	"strings"
	"time"

	engine "github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/config"

	"scratch17/sio"
)

type sess struct {
	s engine.Socket
	q url.Values
}

func (e *sess) Send(p string)     { e.s.Send(strings.NewReader(p), nil, nil) }
func (e *sess) Close()            { e.s.Close(false) }
func (e *sess) Query() url.Values { return e.q }

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "")
	flag.Parse()
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50) // as Jetsocket's main.go
	}
	srv, err := sio.NewServer(os.Getenv("JWT_SECRET"), ticks())
	if err != nil {
		log.Fatal(err)
	}
	opts := &config.ServerOptions{}
	opts.SetPingInterval(25 * time.Second)
	opts.SetPingTimeout(20 * time.Second)
	opts.SetMaxHttpBufferSize(1e6)
	eng := engine.New(opts)
	eng.On("connection", func(args ...any) {
		s := args[0].(engine.Socket)
		q, _ := url.ParseQuery(s.Request().Request().URL.RawQuery)
		c := srv.Open(&sess{s: s, q: q})
		s.On("message", func(a ...any) {
			if len(a) == 0 {
				return
			}
			var text string
			switch d := a[0].(type) {
			case io.Reader:
				b, _ := io.ReadAll(d)
				text = string(b)
			case string:
				text = d
			}
			c.OnMessage(text)
		})
		s.On("close", func(...any) { c.OnClose() })
	})
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv.CheckHandshake(eng))
	mux.HandleFunc("/debug/mem", memHandler(srv.Count))
	log.Fatal(http.ListenAndServe(*addr, mux))
}

func ticks() []time.Duration {
	return []time.Duration{0, 200 * time.Millisecond, time.Second, 3 * time.Second}
}

func memHandler(count func() int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		_ = json.NewEncoder(w).Encode(map[string]any{"heap_inuse": m.HeapInuse, "heap_alloc": m.HeapAlloc, "stack_inuse": m.StackInuse, "sys": m.Sys, "goroutines": runtime.NumGoroutine(), "sockets": count()})
	}
}
