package harness

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// The bench runs deploy/nginx.conf as the repo ships it: only the upstream servers and
// the listen line change, as e2e/deploy.test.mjs changes them.
func TestRenderNginxConfChangesOnlyUpstreamsAndListen(t *testing.T) {
	text, err := os.ReadFile("../../deploy/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	got, err := RenderNginxConf(string(text), []string{"127.0.0.1:1001", "127.0.0.1:1002"}, 4321)
	if err != nil {
		t.Fatal(err)
	}
	var kept, changed []string
	for _, l := range strings.Split(string(text), "\n") {
		if strings.Contains(l, "server 10.0.0.") || strings.HasSuffix(l, "# listen") {
			changed = append(changed, l)
			continue
		}
		kept = append(kept, l)
	}
	if len(changed) != 4 {
		t.Fatalf("deploy/nginx.conf's upstream and listen lines: %q", changed)
	}
	var rest []string
	for _, l := range strings.Split(got, "\n") {
		switch strings.TrimSpace(l) {
		case "server 127.0.0.1:1001 max_fails=1 fail_timeout=10s;", "server 127.0.0.1:1002 max_fails=1 fail_timeout=10s;", "listen 127.0.0.1:4321; # listen":
			continue
		}
		rest = append(rest, l)
	}
	if strings.Join(rest, "\n") != strings.Join(kept, "\n") {
		t.Fatalf("other lines changed:\n%s", got)
	}
	if strings.Count(got, "server 127.0.0.1:") != 2 || strings.Contains(got, "10.0.0.11:8080") {
		t.Fatalf("upstreams not replaced:\n%s", got)
	}
	if _, err := RenderNginxConf("server { listen 80; }", nil, 1); err == nil {
		t.Fatal("a file without the markers was rendered")
	}
}

func TestCPUOfThisProcess(t *testing.T) {
	d, err := CPU(os.Getpid())
	if err != nil || d < 0 {
		t.Fatalf("CPU: %v, %v", d, err)
	}
	if n, err := ReadBytes(os.Getpid()); err != nil || n <= 0 {
		t.Fatalf("ReadBytes: %d, %v", n, err)
	}
	if _, err := CPU(-1); err == nil {
		t.Fatal("no error for a process that cannot exist")
	}
}

// A missing program is ErrMissing, which jetbench cluster turns into a skip.
func TestLookMissing(t *testing.T) {
	if _, err := Look("jetbench-no-such-program"); !errors.Is(err, ErrMissing) {
		t.Fatalf("Look: %v, want ErrMissing", err)
	}
}
