package channels

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/jetsocket/jetsocket/server/errs"
)

const (
	appKey    = "278d425bdf160c739803"
	appSecret = "7ad3773142a6692b25b8"
)

// sign is an independent HMAC of s, as a backend computes it.
func sign(s string) string {
	m := hmac.New(sha256.New, []byte(appSecret))
	m.Write([]byte(s))
	return appKey + ":" + hex.EncodeToString(m.Sum(nil))
}

func mustParse(t *testing.T, name string) Channel {
	t.Helper()
	ch, err := Parse(name)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestDelegatedAllowsWhatTheBackendSigned(t *testing.T) {
	g := Delegated(appKey, appSecret)
	priv := mustParse(t, "private-foobar")
	if err := g(Request{Channel: priv, SocketID: "1234.1234", Auth: sign("1234.1234:private-foobar")}); err != nil {
		t.Fatalf("signed private channel: %v", err)
	}
	if got := ChannelAuth(appKey, appSecret, "1234.1234", "private-foobar", ""); got != sign("1234.1234:private-foobar") {
		t.Fatalf("ChannelAuth %s", got)
	}
	enc := mustParse(t, "private-encrypted-vip")
	if err := g(Request{Channel: enc, SocketID: "1.2", Auth: sign("1.2:private-encrypted-vip")}); err != nil {
		t.Fatalf("signed encrypted channel: %v", err)
	}
	if err := g(Request{Channel: priv, SocketID: "1.2"}); !errors.Is(err, ErrNoOpinion) {
		t.Fatalf("no auth: %v, want no opinion", err)
	}

	pres := mustParse(t, "presence-foobar")
	data := `{"user_id":10,"user_info":{"name":"Mr. Channels"}}`
	r := Request{Channel: pres, SocketID: "1234.1234", Auth: sign("1234.1234:presence-foobar:" + data), ChannelData: data}
	pd, err := VerifyAuth(appKey, appSecret, r)
	if err != nil {
		t.Fatal(err)
	}
	if pd.UserID != "10" || string(pd.UserInfo) != `{"name":"Mr. Channels"}` {
		t.Fatalf("presence data %+v", pd)
	}
	data = `{"user_id":"crm-7"}`
	pd, err = VerifyAuth(appKey, appSecret, Request{Channel: pres, SocketID: "1.2", Auth: sign("1.2:presence-foobar:" + data), ChannelData: data})
	if err != nil || pd.UserID != "crm-7" || string(pd.UserInfo) != `{}` {
		t.Fatalf("string user id, no info: %+v %v", pd, err)
	}
}

func TestDelegatedRefuses(t *testing.T) {
	priv := mustParse(t, "private-foobar")
	pres := mustParse(t, "presence-foobar")
	good := `{"user_id":"1"}`
	for _, c := range []struct {
		name string
		r    Request
		code string
	}{
		{"another socket's signature", Request{Channel: priv, SocketID: "9.9", Auth: sign("1234.1234:private-foobar")}, "invalid_auth"},
		{"another channel's signature", Request{Channel: priv, SocketID: "1.2", Auth: sign("1.2:private-other")}, "invalid_auth"},
		{"another app's key", Request{Channel: priv, SocketID: "1.2", Auth: "other-key:" + strings.Split(sign("1.2:private-foobar"), ":")[1]}, "invalid_auth"},
		{"no key", Request{Channel: priv, SocketID: "1.2", Auth: "deadbeef"}, "invalid_auth"},
		{"upper-case hex", Request{Channel: priv, SocketID: "1.2", Auth: strings.ToUpper(sign("1.2:private-foobar"))}, "invalid_auth"},
		{"tampered channel_data", Request{Channel: pres, SocketID: "1.2", Auth: sign("1.2:presence-foobar:" + good), ChannelData: `{"user_id":"2"}`}, "invalid_auth"},
		{"presence without channel_data", Request{Channel: pres, SocketID: "1.2", Auth: sign("1.2:presence-foobar")}, "invalid_channel_data"},
		{"channel_data on a private channel", Request{Channel: priv, SocketID: "1.2", Auth: sign("1.2:private-foobar:" + good), ChannelData: good}, "invalid_channel_data"},
		{"channel_data not JSON", Request{Channel: pres, SocketID: "1.2", Auth: sign("1.2:presence-foobar:nope"), ChannelData: "nope"}, "invalid_channel_data"},
		{"no user_id", Request{Channel: pres, SocketID: "1.2", Auth: sign(`1.2:presence-foobar:{"user_info":{}}`), ChannelData: `{"user_info":{}}`}, "invalid_channel_data"},
		{"user_id an object", Request{Channel: pres, SocketID: "1.2", Auth: sign(`1.2:presence-foobar:{"user_id":{}}`), ChannelData: `{"user_id":{}}`}, "invalid_channel_data"},
		{"channel_data too large", Request{Channel: pres, SocketID: "1.2", Auth: appKey + ":00", ChannelData: strings.Repeat("a", MaxChannelData+1)}, "invalid_channel_data"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := VerifyAuth(appKey, appSecret, c.r)
			var e *errs.Error
			if !errors.As(err, &e) || e.Code != c.code {
				t.Fatalf("got %v, want code %s", err, c.code)
			}
			if err := Delegated(appKey, appSecret)(c.r); err == nil || errors.Is(err, ErrNoOpinion) {
				t.Fatalf("guard: %v", err)
			}
		})
	}
}

func TestVerifyUser(t *testing.T) {
	data := `{"id":"12345","name":"x"}`
	auth := sign("1234.1234::user::" + data)
	if got := UserAuth(appKey, appSecret, "1234.1234", data); got != auth {
		t.Fatalf("UserAuth %s", got)
	}
	if id, err := VerifyUser(appKey, appSecret, "1234.1234", auth, data); err != nil || id != "12345" {
		t.Fatalf("valid sign-in: %q %v", id, err)
	}
	for name, c := range map[string]struct{ socket, auth, data, code string }{
		"another socket":      {"9.9", auth, data, "invalid_auth"},
		"tampered user_data":  {"1234.1234", auth, `{"id":"1"}`, "invalid_auth"},
		"another key":         {"1234.1234", "k:" + strings.Split(auth, ":")[1], data, "invalid_auth"},
		"no id":               {"1.2", sign(`1.2::user::{"name":"x"}`), `{"name":"x"}`, "invalid_user_data"},
		"numeric id":          {"1.2", sign(`1.2::user::{"id":5}`), `{"id":5}`, "invalid_user_data"},
		"user_data too large": {"1.2", appKey + ":00", strings.Repeat("a", MaxChannelData+1), "invalid_user_data"},
	} {
		_, err := VerifyUser(appKey, appSecret, c.socket, c.auth, c.data)
		var e *errs.Error
		if !errors.As(err, &e) || e.Code != c.code {
			t.Errorf("%s: got %v, want %s", name, err, c.code)
		}
	}
}
