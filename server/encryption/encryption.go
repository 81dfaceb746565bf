// Package encryption implements the end-to-end encryption of private-encrypted-
// channels as Pusher's SDKs do: the channel key is SHA-256(channel name || master key),
// payloads are NaCl secretbox (XSalsa20-Poly1305) with a random 24-byte nonce, sent as
// {nonce, ciphertext} in standard base64.
package encryption

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/nacl/secretbox"
)

// MasterKeySize is the size of ENCRYPTION_MASTER_KEY once decoded.
const MasterKeySize = 32

const nonceSize = 24

// Payload is an encrypted event's data.
type Payload struct {
	Nonce      string `json:"nonce"`
	Ciphertext string `json:"ciphertext"`
}

// ChannelKey derives the secretbox key of channel.
func ChannelKey(channel string, master []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(channel))
	h.Write(master)
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

// SharedSecret is the channel key in standard base64, as an authorized subscriber gets it.
func SharedSecret(channel string, master []byte) string {
	k := ChannelKey(channel, master)
	return base64.StdEncoding.EncodeToString(k[:])
}

// Encrypt seals plaintext for channel with a fresh random nonce.
func Encrypt(channel string, master, plaintext []byte) (Payload, error) {
	if len(master) != MasterKeySize {
		return Payload{}, fmt.Errorf("encryption: master key is %d bytes, want %d", len(master), MasterKeySize)
	}
	var nonce [nonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return Payload{}, fmt.Errorf("encryption: nonce: %w", err)
	}
	key := ChannelKey(channel, master)
	box := secretbox.Seal(nil, plaintext, &nonce, &key)
	return Payload{
		Nonce:      base64.StdEncoding.EncodeToString(nonce[:]),
		Ciphertext: base64.StdEncoding.EncodeToString(box),
	}, nil
}

// ErrDecrypt is returned for ciphertext that does not open with the channel key.
var ErrDecrypt = errors.New("encryption: cannot decrypt")

// Decrypt opens p with channel's key.
func Decrypt(channel string, master []byte, p Payload) ([]byte, error) {
	nonce, err := base64.StdEncoding.DecodeString(p.Nonce)
	if err != nil || len(nonce) != nonceSize {
		return nil, ErrDecrypt
	}
	box, err := base64.StdEncoding.DecodeString(p.Ciphertext)
	if err != nil {
		return nil, ErrDecrypt
	}
	var n [nonceSize]byte
	copy(n[:], nonce)
	key := ChannelKey(channel, master)
	out, ok := secretbox.Open(nil, box, &n, &key)
	if !ok {
		return nil, ErrDecrypt
	}
	return out, nil
}

// WellFormed reports whether data is {nonce, ciphertext} with a 24-byte nonce and a
// ciphertext at least as long as the authenticator: what an SDK's encrypt produces. It
// keeps plaintext from being sent on an encrypted channel by mistake.
func WellFormed(data []byte) bool {
	var p Payload
	if err := json.Unmarshal(data, &p); err != nil {
		return false
	}
	nonce, err := base64.StdEncoding.DecodeString(p.Nonce)
	if err != nil || len(nonce) != nonceSize {
		return false
	}
	box, err := base64.StdEncoding.DecodeString(p.Ciphertext)
	return err == nil && len(box) >= secretbox.Overhead
}
