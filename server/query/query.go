// Package query reads single parameters from a URL's raw query without parsing all of
// it. A handshake's parameters (EIO, transport, sid, token) are read in several layers,
// and r.URL.Query() builds a map and a string per parameter at each call: about 2 KB of
// garbage per connect (bench heap profiles). These answer as url.ParseQuery(raw) would,
// and allocate only to unescape a value that needs it.
package query

import (
	"net/url"
	"strings"
)

// maxParams is net/url's: ParseQuery gives nothing for a query with more parameters.
const maxParams = 10000

// Get is url.ParseQuery(raw).Get(key): the first value of key, or "".
func Get(raw, key string) string {
	v, _ := lookup(raw, key)
	return v
}

// Has is url.ParseQuery(raw).Has(key).
func Has(raw, key string) bool {
	_, ok := lookup(raw, key)
	return ok
}

func lookup(raw, key string) (string, bool) {
	if strings.Count(raw, "&")+1 > maxParams {
		return "", false
	}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue // ParseQuery skips both
		}
		k, v, _ := strings.Cut(pair, "=")
		k, ok := unescape(k)
		if !ok || k != key {
			continue
		}
		if v, ok = unescape(v); ok {
			return v, true
		}
	}
	return "", false
}

func unescape(s string) (string, bool) {
	if !strings.ContainsAny(s, "%+") {
		return s, true
	}
	u, err := url.QueryUnescape(s)
	return u, err == nil
}
