package query

import (
	"net/url"
	"strings"
	"testing"
)

// Get and Has answer as url.ParseQuery does, on the queries clients send and on broken
// ones.
func TestAnswersAsParseQuery(t *testing.T) {
	queries := []string{
		"", "EIO=4&transport=websocket", "EIO=3&transport=polling&t=ABC&token=a.b.c",
		"sid=abc&sid=def", "token=a%2Bb+c", "token=%zz&token=ok", "token", "token=",
		"=x&token=1", "a=1;b=2&token=t", "%45IO=4", "EIO=4&&&EIO=3", "j=1", "t%6Fken=x",
		"token=%", "token=%2", "token=a=b=c", "&", "EIO=%34",
		strings.Repeat("a=1&", maxParams) + "EIO=4",
	}
	keys := []string{"EIO", "transport", "sid", "token", "j", "a", "b", "", "x"}
	for _, q := range queries {
		want, _ := url.ParseQuery(q)
		for _, k := range keys {
			if got := Get(q, k); got != want.Get(k) {
				t.Errorf("Get(%.60q, %q) = %q, want %q", q, k, got, want.Get(k))
			}
			if got := Has(q, k); got != want.Has(k) {
				t.Errorf("Has(%.60q, %q) = %v, want %v", q, k, got, want.Has(k))
			}
		}
	}
}

// A query's plain values are read without allocating.
func TestGetAllocatesNothingForPlainValues(t *testing.T) {
	q := "EIO=4&transport=websocket&sid=AbCdEf0123456789&token=eyJhbGciOiJIUzI1NiJ9.e30.sig"
	if n := testing.AllocsPerRun(100, func() {
		_ = Get(q, "token")
		_ = Get(q, "EIO")
		_ = Has(q, "j")
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func FuzzAnswersAsParseQuery(f *testing.F) {
	for _, s := range []string{"EIO=4&transport=websocket", "token=a%2Bb+c", "a=1;b=2&token=t", "%45IO=4", "token=%zz&token=ok"} {
		f.Add(s, "token")
		f.Add(s, "EIO")
	}
	f.Fuzz(func(t *testing.T, q, k string) {
		want, _ := url.ParseQuery(q)
		if got := Get(q, k); got != want.Get(k) {
			t.Fatalf("Get(%q, %q) = %q, want %q", q, k, got, want.Get(k))
		}
		if got := Has(q, k); got != want.Has(k) {
			t.Fatalf("Has(%q, %q) = %v, want %v", q, k, got, want.Has(k))
		}
	})
}
