package load

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// goSample is what a Go server's net/http/pprof says about its memory right after a
// forced GC. RSS counts pages the runtime has not returned yet and everything else in
// the process; the live heap and the goroutine stacks are what connections hold.
type goSample struct {
	HeapInuse  int64 // runtime.MemStats.HeapInuse
	HeapAlloc  int64 // runtime.MemStats.HeapAlloc: live objects only, no partly used spans
	StackInuse int64 // runtime.MemStats.StackInuse
	Goroutines int64
}

// sampleGo forces a GC on the server at debug (its DEBUG_ADDR), reads the heap's and
// stacks' in-use bytes and the goroutine count, and, when profile is set, saves the heap
// profile there (go tool pprof -sample_index=inuse_space; -diff_base against another).
func sampleGo(ctx context.Context, debug *url.URL, profile string) (goSample, error) {
	var s goSample
	c := &http.Client{}
	// Twice: what sync.Pools hold survives one GC in their victim caches.
	for range 2 {
		if err := get(ctx, c, debug, "/debug/pprof/heap", "gc=1&debug=1", func(r io.Reader) error {
			var err error
			s.HeapInuse, s.HeapAlloc, s.StackInuse, err = parseMemStats(r)
			return err
		}); err != nil {
			return s, err
		}
	}
	if err := get(ctx, c, debug, "/debug/pprof/goroutine", "debug=1", func(r io.Reader) error {
		line, err := bufio.NewReader(r).ReadString('\n')
		if err != nil {
			return fmt.Errorf("goroutine profile: %w", err)
		}
		n, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
		if !ok {
			return fmt.Errorf("goroutine profile: unexpected first line %q", line)
		}
		s.Goroutines, err = strconv.ParseInt(n, 10, 64)
		return err
	}); err != nil {
		return s, err
	}
	if profile == "" {
		return s, nil
	}
	return s, get(ctx, c, debug, "/debug/pprof/heap", "", func(r io.Reader) error {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return fmt.Errorf("save %s: %w", profile, err)
		}
		return f.Close()
	})
}

func get(ctx context.Context, c *http.Client, base *url.URL, path, query string, read func(io.Reader) error) error {
	u := *base
	u.Path, u.RawQuery = path, query
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u.Path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", u.Path, resp.StatusCode)
	}
	return read(resp.Body)
}

// parseMemStats reads HeapInuse, HeapAlloc and StackInuse from the runtime.MemStats
// comment lines at the end of a debug=1 heap profile ("# HeapInuse = 123",
// "# HeapAlloc = 100", "# Stack = 456 / 789").
func parseMemStats(r io.Reader) (inuse, alloc, stack int64, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	want := map[string]*int64{"HeapInuse": &inuse, "HeapAlloc": &alloc, "Stack": &stack}
	for sc.Scan() {
		name, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "# "), " = ")
		dst := want[name]
		if !ok || dst == nil {
			continue
		}
		v, _, _ = strings.Cut(v, " /") // Stack = inuse / sys
		if *dst, err = strconv.ParseInt(v, 10, 64); err != nil {
			return 0, 0, 0, fmt.Errorf("%s: %w", name, err)
		}
		delete(want, name)
	}
	if err := sc.Err(); err != nil {
		return 0, 0, 0, fmt.Errorf("heap profile: %w", err)
	}
	if len(want) > 0 {
		return 0, 0, 0, fmt.Errorf("heap profile: no HeapInuse, HeapAlloc or Stack line (is this net/http/pprof with debug=1?)")
	}
	return inuse, alloc, stack, nil
}
