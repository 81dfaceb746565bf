// Package redistest runs throwaway redis-server processes for the tests and benchmarks
// that need a real Redis (many-node mode, the Redis history store).
package redistest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Server is a running redis-server on loopback.
type Server struct {
	Port int
	PID  int
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// URL is the server's redis:// URL (database 0), as REDIS_URL takes it.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Start runs redis-server on a free port, without persistence, and stops it when tb
// ends. Without redis-server tb is skipped, or fails under CI (scripts/test.sh
// installs it, so a missing one there is a broken setup, not a reason to skip).
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatal("redis-server not installed (scripts/test.sh installs it)")
		}
		tb.Skip("redis-server not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	s := &Server{Port: port, PID: cmd.Process.Pid}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", s.Addr()); err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			tb.Fatal("redis-server did not start")
		}
	}
}
