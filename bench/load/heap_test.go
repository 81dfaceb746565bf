package load

import (
	"strings"
	"testing"
)

func TestParseMemStats(t *testing.T) {
	// The tail of a debug=1 heap profile, as runtime/pprof writes it.
	profile := `heap profile: 1: 2 [3: 4] @ heap/1048576
1: 2 [3: 4] @ 0x1

# runtime.MemStats
# Alloc = 1000
# HeapAlloc = 1000
# HeapInuse = 123456
# HeapObjects = 7
# Stack = 65536 / 65536
# MSpan = 1 / 2
`
	inuse, alloc, stack, err := parseMemStats(strings.NewReader(profile))
	if err != nil || inuse != 123456 || alloc != 1000 || stack != 65536 {
		t.Fatalf("got heap in use %d, alloc %d, stack %d, err %v", inuse, alloc, stack, err)
	}
	if _, _, _, err := parseMemStats(strings.NewReader("# HeapInuse = 5\n# HeapAlloc = 4\n")); err == nil {
		t.Fatal("a profile without the Stack line was accepted")
	}
	if _, _, _, err := parseMemStats(strings.NewReader("# HeapInuse = x\n# HeapAlloc = 4\n# Stack = 1 / 2\n")); err == nil {
		t.Fatal("a non-number was accepted")
	}
}

func TestCentrifugoScans(t *testing.T) {
	if seq, sent, ok := scanTimes([]byte(`{"push":{"channel":"bench","pub":{"data":{"t":12345,"seq":7}}}}`)); !ok || seq != 7 || sent != 12345 {
		t.Fatalf("publication: seq %d sent %d ok %v", seq, sent, ok)
	}
	if id, ok := replyID([]byte(`{"id":42,"subscribe":{}}`)); !ok || id != 42 {
		t.Fatalf("reply id %d %v", id, ok)
	}
	if _, ok := replyID([]byte(`{"push":{}}`)); ok {
		t.Fatal("a push read as a reply")
	}
}
