package encryption

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
)

var master = bytes.Repeat([]byte{7}, 32)

func TestChannelKeyIsSHA256OfNameAndMaster(t *testing.T) {
	want := sha256.Sum256(append([]byte("private-encrypted-x"), master...))
	if got := ChannelKey("private-encrypted-x", master); got != want {
		t.Fatal("key derivation differs from SHA-256(name || master)")
	}
	if SharedSecret("private-encrypted-x", master) != base64.StdEncoding.EncodeToString(want[:]) {
		t.Fatal("shared secret is not the key in standard base64")
	}
}

func TestRoundTripAndTamper(t *testing.T) {
	plain := []byte(`{"message":"hello"}`)
	p, err := Encrypt("private-encrypted-x", master, plain)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p)
	if !WellFormed(b) || bytes.Contains(b, []byte("hello")) {
		t.Fatalf("payload %s", b)
	}
	got, err := Decrypt("private-encrypted-x", master, p)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("decrypt: %q %v", got, err)
	}
	if _, err := Decrypt("private-encrypted-y", master, p); err != ErrDecrypt {
		t.Fatal("another channel's key opened it")
	}
	q, _ := Encrypt("private-encrypted-x", master, plain)
	if q.Nonce == p.Nonce {
		t.Fatal("nonce repeated")
	}
	box, _ := base64.StdEncoding.DecodeString(p.Ciphertext)
	box[0] ^= 1
	p.Ciphertext = base64.StdEncoding.EncodeToString(box)
	if _, err := Decrypt("private-encrypted-x", master, p); err != ErrDecrypt {
		t.Fatal("tampered ciphertext opened")
	}
	if _, err := Encrypt("c", master[:16], plain); err == nil {
		t.Fatal("short master key accepted")
	}
}

func TestWellFormed(t *testing.T) {
	for _, s := range []string{`"plain"`, `{"message":"hi"}`, `{"nonce":"x","ciphertext":"y"}`, `{"nonce":"` + base64.StdEncoding.EncodeToString(make([]byte, 24)) + `","ciphertext":"AA=="}`, `[`} {
		if WellFormed([]byte(s)) {
			t.Errorf("%s accepted", s)
		}
	}
}
