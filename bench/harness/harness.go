// Package harness starts the servers under test as child processes on free loopback
// ports, each with the same credentials, and stops them.
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Credentials shared by the load tool and every server under test.
type Credentials struct {
	JWTSecret string
	AppID     string
	AppKey    string
	AppSecret string
}

// Spec says how to start one server.
type Spec struct {
	Name string
	// Command builds the process for a loopback port; its environment is set by Start.
	Command func(port int) *exec.Cmd
	// Env returns the server's own variables for port and credentials.
	Env func(port int, c Credentials) []string
	// DebugEnv, when set, is how to give a Go server a net/http/pprof listener on
	// port: Start then picks a free one and sets Process.DebugURL.
	DebugEnv func(port int) []string
	// PprofOnMain says the server serves net/http/pprof on its own port (Centrifugo's
	// debug endpoints): Process.DebugURL is then its URL.
	PprofOnMain bool
	// HealthPath answers 200 once the server is ready; "" is /healthz.
	HealthPath string
}

// Process is a running server.
type Process struct {
	Name string
	URL  *url.URL
	PID  int
	// DebugURL is the server's net/http/pprof address, when its Spec has DebugEnv.
	DebugURL *url.URL

	cmd    *exec.Cmd
	output *tail
	exited chan struct{}
}

// Start runs spec and waits until GET /healthz answers 200.
func Start(ctx context.Context, spec Spec, c Credentials) (*Process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := spec.Command(port)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, spec.Env(port, c)...)
	var debugURL *url.URL
	if spec.DebugEnv != nil {
		dport, err := freePort()
		if err != nil {
			return nil, err
		}
		cmd.Env = append(cmd.Env, spec.DebugEnv(dport)...)
		debugURL = &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(dport))}
	}
	out := &tail{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	p := &Process{
		Name: spec.Name, PID: cmd.Process.Pid, DebugURL: debugURL, cmd: cmd, output: out, exited: make(chan struct{}),
		URL: &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))},
	}
	if spec.PprofOnMain {
		p.DebugURL = p.URL
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited at start:\n%s", spec.Name, out.String())
		case <-ctx.Done():
			p.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		health := spec.HealthPath
		if health == "" {
			health = "/healthz"
		}
		resp, err := http.Get(p.URL.String() + health)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("%s not healthy after 60s:\n%s", spec.Name, out.String())
		}
	}
}

// Output is the tail of what the process printed.
func (p *Process) Output() string { return p.output.String() }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM and waits (SIGKILL after 15 s).
func (p *Process) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

var _ io.Writer = (*tail)(nil)

// Jetsocket is the spec for the jetsocket binary at bin.
func Jetsocket(bin string) Spec {
	return Spec{
		Name:    "jetsocket",
		Command: func(int) *exec.Cmd { return exec.Command(bin, "-env-file", "") },
		Env: func(port int, c Credentials) []string {
			return []string{
				"ADDR=127.0.0.1:" + strconv.Itoa(port),
				"APP_ENV=development",
				"JWT_SECRET=" + c.JWTSecret,
				"APP_ID=" + c.AppID, "APP_KEY=" + c.AppKey, "APP_SECRET=" + c.AppSecret,
				// One load tool on loopback opens every connection: per-IP and per-user
				// caps would refuse them.
				"MAX_CONNECTIONS_PER_IP=0", "MAX_CONNECTIONS_PER_USER=0",
				// A connect and disconnect line per connection is an operator's choice;
				// the reference server logs nothing either.
				"LOG_LEVEL=warn",
			}
		},
		// pprof on its own loopback listener: idle memory is then read as live heap
		// and stacks after a forced GC, beside RSS.
		DebugEnv: func(port int) []string { return []string{"DEBUG_ADDR=127.0.0.1:" + strconv.Itoa(port)} },
	}
}

// Node is the spec for the Node socket.io 4 reference server in dir.
func Node(dir string) Spec {
	return Spec{
		Name: "node",
		Command: func(int) *exec.Cmd {
			cmd := exec.Command("node", "server.js")
			cmd.Dir = dir
			return cmd
		},
		Env: func(port int, c Credentials) []string {
			return []string{
				"PORT=" + strconv.Itoa(port), "HOST=127.0.0.1",
				"JWT_SECRET=" + c.JWTSecret,
				"APP_ID=" + c.AppID, "APP_KEY=" + c.AppKey, "APP_SECRET=" + c.AppSecret,
				"NODE_ENV=production",
			}
		},
	}
}

// Floor is the spec for the bare fan-out server (package floor) that jetbench at bin
// runs with "jetbench floor".
func Floor(bin string) Spec {
	return Spec{
		Name: "floor",
		Command: func(port int) *exec.Cmd {
			return exec.Command(bin, "floor", "-addr", "127.0.0.1:"+strconv.Itoa(port))
		},
		Env: func(int, Credentials) []string { return nil },
	}
}

// Centrifugo is the spec for a Centrifugo v6 binary at bin, configured through its
// environment: HS256 connection tokens with the shared JWT secret, the server API key as
// the app key, clients allowed to subscribe to channels without a namespace (the
// bench channel), health and pprof endpoints on, logging at errors only.
func Centrifugo(bin string) Spec {
	return Spec{
		Name:    "centrifugo",
		Command: func(int) *exec.Cmd { return exec.Command(bin) },
		Env: func(port int, c Credentials) []string {
			return []string{
				"CENTRIFUGO_HTTP_SERVER_ADDRESS=127.0.0.1",
				"CENTRIFUGO_HTTP_SERVER_PORT=" + strconv.Itoa(port),
				"CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY=" + c.JWTSecret,
				"CENTRIFUGO_CLIENT_ALLOWED_ORIGINS=*",
				"CENTRIFUGO_HTTP_API_KEY=" + c.AppKey,
				"CENTRIFUGO_CHANNEL_WITHOUT_NAMESPACE_ALLOW_SUBSCRIBE_FOR_CLIENT=true",
				"CENTRIFUGO_HEALTH_ENABLED=true",
				"CENTRIFUGO_DEBUG_ENABLED=true",
				"CENTRIFUGO_LOG_LEVEL=error",
				"CENTRIFUGO_USAGE_STATS_DISABLED=true",
			}
		},
		PprofOnMain: true,
		HealthPath:  "/health",
	}
}

// ErrExited is returned when a server died during a run.
var ErrExited = errors.New("server exited during the run")
