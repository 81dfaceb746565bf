//go:build ignore

// Command own serves socket.io v5 over the prototype Engine.IO v4 engine (eio4), with the
// shared scratch socket.io layer (sio) on top.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"scratch17/own/eio4"
	"scratch17/sio"
)

type handler struct{ c *sio.Conn }

func (h handler) OnMessage(t string) { h.c.OnMessage(t) }
func (h handler) OnClose(string)     { h.c.OnClose() }

type sess struct{ s *eio4.Session }

func (e sess) Send(p string)     { e.s.Send(p) }
func (e sess) Close()            { e.s.Close() }
func (e sess) Query() url.Values { return e.s.Query() }

func main() {
	addr := flag.String("addr", "127.0.0.1:8091", "")
	flag.Parse()
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50) // as Jetsocket's main.go
	}
	srv, err := sio.NewServer(os.Getenv("JWT_SECRET"), []time.Duration{0, 200 * time.Millisecond, time.Second, 3 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	eng := eio4.NewServer(eio4.Options{
		CheckOrigin: func(*http.Request) bool { return true },
		OnOpen:      func(s *eio4.Session) eio4.Handler { return handler{srv.Open(sess{s})} },
	})
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv.CheckHandshake(eng))
	mux.HandleFunc("/debug/mem", func(w http.ResponseWriter, r *http.Request) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		_ = json.NewEncoder(w).Encode(map[string]any{"heap_inuse": m.HeapInuse, "heap_alloc": m.HeapAlloc, "stack_inuse": m.StackInuse, "sys": m.Sys, "goroutines": runtime.NumGoroutine(), "sockets": srv.Count()})
	})
	log.Fatal(http.ListenAndServe(*addr, mux))
}
