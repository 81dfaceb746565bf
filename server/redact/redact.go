// Package redact keeps credentials out of log lines that name a URL.
//
// A webhook or Redis URL may carry a password (https://user:pass@host/) or a token in its
// query (?token=...). Logs name the URL to say which receiver failed; they keep the
// scheme, host, path and query keys and replace user info and query values.
package redact

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// Mask replaces each redacted part.
const Mask = "REDACTED"

// URL returns raw with its user info, query values and fragment replaced by Mask. A
// string that does not parse as a URL is cut at its first '?' or '#', and anything up to
// its last '@' after the scheme is masked.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return roughly(raw)
	}
	if u.User != nil {
		u.User = url.User(Mask)
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = Mask
		} else {
			for k, vs := range q {
				for i := range vs {
					vs[i] = Mask
				}
				q[k] = vs
			}
			u.RawQuery = q.Encode()
		}
	}
	if u.Fragment != "" || u.RawFragment != "" {
		u.Fragment, u.RawFragment = Mask, ""
	}
	return u.String()
}

func roughly(raw string) string {
	s, _, cut := strings.Cut(raw, "?")
	s, _, cut2 := strings.Cut(s, "#")
	rest, scheme := s, ""
	if i := strings.Index(s, "://"); i >= 0 {
		scheme, rest = s[:i+3], s[i+3:]
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = Mask + rest[at:]
	}
	s = scheme + rest
	if cut || cut2 {
		s += "?" + Mask
	}
	return s
}

// Error returns err's message with the URL of any *url.Error in it redacted (net/http
// errors name the request URL, with its query, in full).
func Error(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) && ue.URL != "" {
		// url.Error quotes the URL (%q): a '"' or a backslash in it is escaped there, so the
		// quoted form is replaced first, then any bare one.
		red := URL(ue.URL)
		msg = strings.ReplaceAll(msg, strconv.Quote(ue.URL), strconv.Quote(red))
		msg = strings.ReplaceAll(msg, ue.URL, red)
	}
	return msg
}
