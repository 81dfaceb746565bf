// Package apisig verifies (and, for tests and clients, makes) request signatures of the
// Pusher HTTP API, exactly as Pusher's server SDKs sign: auth_signature is the hex
// HMAC-SHA256, keyed with the app secret, of "METHOD\nPATH\nQUERY", where QUERY is every
// query parameter but auth_signature, sorted by key, joined as key=value with '&'.
package apisig

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jetsocket/jetsocket/server/errs"
)

// MaxAge is how old (or how far in the future) auth_timestamp may be.
const MaxAge = 600 * time.Second

// StringToSign is what auth_signature signs. Values are used as decoded from the query:
// Pusher's SDKs sign them unescaped.
func StringToSign(method, path string, query url.Values) string {
	keys := make([]string, 0, len(query))
	for k := range query {
		if k != "auth_signature" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(strings.ToUpper(method))
	b.WriteByte('\n')
	b.WriteString(path)
	b.WriteByte('\n')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(query.Get(k))
	}
	return b.String()
}

// Sign returns the hex HMAC-SHA256 of s keyed with secret.
func Sign(secret, s string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

// BodyMD5 is the hex MD5 of body, as sent in body_md5.
func BodyMD5(body []byte) string {
	sum := md5.Sum(body)
	return hex.EncodeToString(sum[:])
}

// SignQuery adds auth_key, auth_timestamp, auth_version, body_md5 (for a body) and
// auth_signature to query.
func SignQuery(method, path string, query url.Values, body []byte, key, secret string, now time.Time) {
	query.Set("auth_key", key)
	query.Set("auth_timestamp", strconv.FormatInt(now.Unix(), 10))
	query.Set("auth_version", "1.0")
	if len(body) > 0 {
		query.Set("body_md5", BodyMD5(body))
	}
	query.Set("auth_signature", Sign(secret, StringToSign(method, path, query)))
}

func unauthorized(msg string) *errs.Error {
	return errs.New(errs.Unauthorized, errs.CodeInvalidSignature, msg)
}

// Verify checks a request's signature. It returns an *errs.Error of kind Unauthorized
// naming what is wrong, never the expected signature.
func Verify(method, path string, query url.Values, body []byte, key, secret string, now time.Time) error {
	for _, p := range []string{"auth_key", "auth_timestamp", "auth_version", "auth_signature"} {
		if query.Get(p) == "" {
			return unauthorized("missing " + p)
		}
	}
	if query.Get("auth_key") != key {
		return unauthorized("unknown auth_key")
	}
	if v := query.Get("auth_version"); v != "1.0" {
		return unauthorized(fmt.Sprintf("auth_version must be 1.0, got %q", truncate(v)))
	}
	ts, err := strconv.ParseInt(query.Get("auth_timestamp"), 10, 64)
	if err != nil {
		return unauthorized("auth_timestamp is not a number")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > MaxAge || d < -MaxAge {
		return unauthorized("auth_timestamp is more than 600 seconds away from the server's clock")
	}
	if len(body) > 0 {
		got := query.Get("body_md5")
		if got == "" {
			return unauthorized("missing body_md5")
		}
		if !hmac.Equal([]byte(strings.ToLower(got)), []byte(BodyMD5(body))) {
			return unauthorized("body_md5 does not match the body")
		}
	}
	want := Sign(secret, StringToSign(method, path, query))
	if !hmac.Equal([]byte(strings.ToLower(query.Get("auth_signature"))), []byte(want)) {
		return unauthorized("auth_signature does not match")
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}
