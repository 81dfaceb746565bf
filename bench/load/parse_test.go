package load

import "testing"

func TestParseEvent(t *testing.T) {
	name, args, ok := parseEvent([]byte(`["tick",{"channel":"bench","data":{"t":5,"seq":2}}]`))
	if !ok || name != "tick" || len(args) != 1 {
		t.Fatalf("got %q %d %v", name, len(args), ok)
	}
	if name, _, ok := parseEvent([]byte(`12["jetsocket:x"]`)); !ok || name != "jetsocket:x" {
		t.Fatalf("with ack id: %q %v", name, ok)
	}
	for _, bad := range []string{``, `[]`, `[1]`, `{`, `["a"`} {
		if _, _, ok := parseEvent([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestScanTick(t *testing.T) {
	seq, sent, ok := scanTick([]byte(`["tick",{"channel":"bench","data":{"t":1764633600123456789,"seq":27}}]`), "tick")
	if !ok || seq != 27 || sent != 1764633600123456789 {
		t.Fatalf("got seq %d sent %d ok %v", seq, sent, ok)
	}
	// What the scan does not recognise goes to the JSON path, never to a wrong value.
	for _, other := range []string{
		`["tock",{"channel":"bench","data":{"t":1,"seq":2}}]`,
		`["tick",{"channel":"bench","data":{"seq":2,"t":1}}]`,
		`["tick",{"channel":"bench","data":{"t":1,"seq":2,"x":3}}]`,
		`["tick",{"channel":"bench","data":{"t":-1,"seq":2}}]`,
		`["tick"]`, `["tic`, ``,
	} {
		if _, _, ok := scanTick([]byte(other), "tick"); ok {
			t.Errorf("%s scanned", other)
		}
	}
}

// The Pusher form of the timing event: its data is a JSON string.
func TestScanPusherTimes(t *testing.T) {
	seq, sent, ok := scanPusherTimes([]byte(`{"event":"tick","channel":"bench","data":"{\"t\":1764633600123456789,\"seq\":27}"}`))
	if !ok || seq != 27 || sent != 1764633600123456789 {
		t.Fatalf("got seq %d sent %d ok %v", seq, sent, ok)
	}
	for _, other := range []string{
		`{"event":"tick","channel":"bench","data":"{\"seq\":2,\"t\":1}"}`,
		`{"event":"tick","channel":"bench","data":"{\"t\":1,\"seq\":2,\"x\":3}"}`,
		`{"event":"tick","channel":"bench","data":{"t":1,"seq":2}}`,
		`{"event":"tick"`, ``,
	} {
		if _, _, ok := scanPusherTimes([]byte(other)); ok {
			t.Errorf("%s scanned", other)
		}
	}
}

func TestPercentile(t *testing.T) {
	ns := []int64{5e6, 1e6, 3e6, 2e6, 4e6}
	for _, c := range []struct {
		p    float64
		want float64
	}{{50, 3}, {100, 5}, {1, 1}, {99, 5}} {
		if got := percentile(ns, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("empty")
	}
}
