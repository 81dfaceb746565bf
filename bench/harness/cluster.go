package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrMissing is returned when a program the cluster bench needs is not installed.
var ErrMissing = errors.New("not installed")

// Look finds a program on PATH (or /usr/sbin, where Debian puts nginx), or says it is
// missing with ErrMissing.
func Look(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if p := filepath.Join("/usr/sbin", name); fileExists(p) {
		return p, nil
	}
	return "", fmt.Errorf("%s: %w", name, ErrMissing)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// Redis is a throwaway redis-server: no persistence, loopback only.
type Redis struct {
	URL    string
	PID    int
	cmd    *exec.Cmd
	rdb    *redis.Client
	exited chan struct{}
}

// StartRedis runs redis-server on a free loopback port and waits for its PING.
func StartRedis(ctx context.Context) (*Redis, error) {
	bin, err := Look("redis-server")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	cmd.SysProcAttr = dieWithParent(syscall.SIGKILL)
	out := &tail{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	r := &Redis{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), PID: cmd.Process.Pid, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.exited) }()
	r.rdb = redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if r.rdb.Ping(ctx).Err() == nil {
			return r, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.Stop()
			return nil, fmt.Errorf("redis-server not answering after 10s:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Egress is redis-server's total_net_output_bytes (INFO stats): everything it has sent,
// pub/sub deliveries and command replies alike.
func (r *Redis) Egress(ctx context.Context) (int64, error) {
	info, err := r.rdb.Info(ctx, "stats").Result()
	if err != nil {
		return 0, fmt.Errorf("redis INFO: %w", err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_net_output_bytes:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("redis INFO stats: no total_net_output_bytes")
}

// Stop ends redis-server (SIGTERM, SIGKILL after 10 s).
func (r *Redis) Stop() {
	_ = r.rdb.Close()
	stopCmd(r.cmd, r.exited, 10*time.Second)
}

// Nginx is nginx running a rendered site configuration in the foreground.
type Nginx struct {
	URL    *url.URL
	PID    int
	Dir    string
	cmd    *exec.Cmd
	out    *tail
	exited chan struct{}
}

// RenderNginxConf is the repo's deploy/nginx.conf text with upstreams as its upstream
// servers and listening on 127.0.0.1:port, changed exactly as e2e/deploy.test.mjs
// changes it: the lines between the "upstream servers" markers and the line marked
// "# listen", nothing else.
func RenderNginxConf(text string, upstreams []string, port int) (string, error) {
	lines := strings.Split(text, "\n")
	begin, end := -1, -1
	for i, l := range lines {
		switch strings.TrimSpace(l) {
		case "# BEGIN upstream servers":
			begin = i
		case "# END upstream servers":
			end = i
		}
	}
	if begin < 0 || end <= begin {
		return "", errors.New("nginx.conf has no \"# BEGIN/END upstream servers\" markers")
	}
	indent := lines[begin][:len(lines[begin])-len(strings.TrimLeft(lines[begin], " \t"))]
	out := append([]string{}, lines[:begin+1]...)
	for _, u := range upstreams {
		out = append(out, indent+"server "+u+" max_fails=1 fail_timeout=10s;")
	}
	out = append(out, lines[end:]...)
	listenLine := regexp.MustCompile(`^\s*listen\s.*# listen$`)
	listen := regexp.MustCompile(`listen\s+[^;]+;`)
	for i, l := range out {
		if listenLine.MatchString(l) {
			out[i] = listen.ReplaceAllLiteralString(l, "listen 127.0.0.1:"+strconv.Itoa(port)+";")
			return strings.Join(out, "\n"), nil
		}
	}
	return "", errors.New("nginx.conf has no line marked \"# listen\"")
}

// NginxOptions is what the main configuration around the site holds.
type NginxOptions struct {
	// Workers is worker_processes (e2e/deploy.test.mjs runs 1).
	Workers int
	// Connections is worker_connections: a proxied socket takes two.
	Connections int
}

// StartNginx renders confPath (deploy/nginx.conf) for upstreams and runs it inside a
// minimal main configuration, e2e/deploy.test.mjs's, in a temporary directory.
func StartNginx(ctx context.Context, confPath string, upstreams []string, o NginxOptions) (*Nginx, error) {
	bin, err := Look("nginx")
	if err != nil {
		return nil, err
	}
	text, err := os.ReadFile(confPath)
	if err != nil {
		return nil, fmt.Errorf("nginx site: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	site, err := RenderNginxConf(string(text), upstreams, port)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", confPath, err)
	}
	dir, err := os.MkdirTemp("", "jetbench-nginx-")
	if err != nil {
		return nil, err
	}
	_ = os.Chmod(dir, 0o755) // a root master hands its temp dirs to an unprivileged worker
	main := fmt.Sprintf(`worker_processes %d;
worker_rlimit_nofile %d;
pid %[3]s/nginx.pid;
error_log %[3]s/error.log warn;
events { worker_connections %[4]d; }
http {
  access_log off;
  client_body_temp_path %[3]s/body;
  proxy_temp_path %[3]s/proxy;
  fastcgi_temp_path %[3]s/fastcgi;
  uwsgi_temp_path %[3]s/uwsgi;
  scgi_temp_path %[3]s/scgi;
  include %[3]s/jetsocket.conf;
}
`, max(o.Workers, 1), max(o.Connections, 1024)+64, dir, max(o.Connections, 1024))
	if err := os.WriteFile(filepath.Join(dir, "jetsocket.conf"), []byte(site), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;")
	cmd.SysProcAttr = dieWithParent(syscall.SIGTERM) // nginx's fast shutdown takes its workers along
	out := &tail{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	n := &Nginx{
		URL: &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))},
		PID: cmd.Process.Pid, Dir: dir, cmd: cmd, out: out, exited: make(chan struct{}),
	}
	go func() { _ = cmd.Wait(); close(n.exited) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-n.exited:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("nginx exited at start:\n%s", out.String())
		default:
		}
		if c, err := net.Dial("tcp", n.URL.Host); err == nil {
			c.Close()
			return n, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			n.Stop()
			return nil, fmt.Errorf("nginx not listening after 10s:\n%s", n.Log())
		}
	}
}

// CPU is nginx's CPU time so far: its master's and its workers'.
func (n *Nginx) CPU() (time.Duration, error) {
	total, err := CPU(n.PID)
	if err != nil {
		return 0, err
	}
	kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", n.PID, n.PID))
	if err != nil {
		return 0, fmt.Errorf("nginx workers: %w", err)
	}
	for _, f := range strings.Fields(string(kids)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return 0, fmt.Errorf("nginx workers: %q", f)
		}
		d, err := CPU(pid)
		if err != nil {
			return 0, err
		}
		total += d
	}
	return total, nil
}

// Log is what nginx printed and its error log.
func (n *Nginx) Log() string {
	b, _ := os.ReadFile(filepath.Join(n.Dir, "error.log"))
	return n.out.String() + string(b)
}

// Stop ends nginx (SIGTERM: fast shutdown; SIGKILL after 10 s) and removes its directory.
func (n *Nginx) Stop() {
	stopCmd(n.cmd, n.exited, 10*time.Second)
	os.RemoveAll(n.Dir)
}

func stopCmd(cmd *exec.Cmd, exited <-chan struct{}, grace time.Duration) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// ClusterNode is the spec for a jetsocket node of a cluster on redisURL, behind a
// balancer on loopback (TRUSTED_PROXIES=127.0.0.1, as e2e/deploy.test.mjs runs them).
func ClusterNode(bin, redisURL string) Spec {
	s := Jetsocket(bin)
	env := s.Env
	s.Env = func(port int, c Credentials) []string {
		return append(env(port, c), "REDIS_URL="+redisURL, "TRUSTED_PROXIES=127.0.0.1")
	}
	s.DebugEnv = nil
	command := s.Command
	s.Command = func(port int) *exec.Cmd {
		cmd := command(port)
		cmd.SysProcAttr = dieWithParent(syscall.SIGKILL)
		return cmd
	}
	return s
}

// dieWithParent has the kernel signal a child when jetbench dies without its deferred
// stops running (SIGKILL, a crash), so no server outlives a run.
func dieWithParent(sig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: sig}
}

// CPU is a process's user+system CPU time so far, from /proc/<pid>/stat.
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("cpu: %w", err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu: /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // utime, field 14
	st, err2 := strconv.ParseInt(f[12], 10, 64) // stime, field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("cpu: /proc/%d/stat: %w", pid, err)
	}
	return time.Duration(ut+st) * (time.Second / 100), nil // USER_HZ is 100 on Linux
}

// ReadBytes is what a process has read so far through read syscalls, sockets included
// (rchar in /proc/<pid>/io): for a node between two samples where its clients send
// nothing but pings, about what Redis sent it.
func ReadBytes(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return 0, fmt.Errorf("read bytes: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("read bytes: no rchar in /proc/%d/io", pid)
}

// Metric reads one unlabelled sample of a Prometheus text /metrics page at base.
func Metric(ctx context.Context, base *url.URL, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String()+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("metrics: HTTP %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("metrics: no %s at %s", name, base)
}
