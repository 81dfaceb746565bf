// Package wire is the socket.io text packets the server sends and the websocket frames
// that carry them: what the hub (to encode a broadcast once) and the socket server (to
// write it) share, with no dependency on either.
package wire

import (
	"encoding/binary"
	"sync"
)

// Frame is an outgoing socket.io packet, encoded once for every connection it goes to.
// It holds the whole websocket frame that carries the packet (header, Engine.IO message
// type '4', packet text): frames from a server are not masked, so these bytes are the
// same on every websocket connection and are written to the socket as they are, with no
// per-recipient framing. Polling connections get the packet text through the Engine.IO
// session instead.
type Frame struct {
	wire []byte // websocket header, '4', packet text
	text int    // offset of the packet text in wire
	alt  *Alt   // the same message in another protocol's form, if any
	pub  *Pub   // the publication the frame carries, when it has a position
}

// Alt is a message's form for another protocol (the Pusher endpoint's JSON text),
// built on first use by whichever recipient needs it and then shared by all of them:
// a broadcast encodes it at most once, and not at all when no such recipient is
// subscribed, so the socket.io path pays only for the Alt value itself.
type Alt struct {
	once sync.Once
	src  AltSource
	b    []byte
}

// AltSource builds a message's other form.
type AltSource interface{ AltForm() []byte }

type altFunc func() []byte

func (f altFunc) AltForm() []byte { return f() }

// NewAlt returns an Alt that build makes on first use; build may return nil (the
// message has no such form).
func NewAlt(build func() []byte) *Alt { return &Alt{src: altFunc(build)} }

// SetSource makes a build from src on first use. An Alt embedded in src's own value
// costs the broadcast one allocation instead of two (an Alt and a closure).
func (a *Alt) SetSource(src AltSource) { a.src = src }

// WithAlt returns f carrying a as its other form.
func (f Frame) WithAlt(a *Alt) Frame {
	f.alt = a
	return f
}

// Alt is the frame's other form, built once and shared; nil when it has none.
func (f Frame) Alt() []byte {
	a := f.alt
	if a == nil {
		return nil
	}
	a.once.Do(func() {
		if a.src != nil {
			a.b = a.src.AltForm()
		}
		a.src = nil // let what it holds go
	})
	return a.b
}

// NewFrame wraps a socket.io packet text (EncodeEvent, EncodeAck) for sending.
func NewFrame(packet []byte) Frame {
	n := 1 + len(packet) // Engine.IO's '4' and the packet
	var hdr [10]byte
	hdr[0] = 0x81 // FIN, text
	h := 2
	switch {
	case n < 126:
		hdr[1] = byte(n)
	case n <= 0xffff:
		hdr[1] = 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(n))
		h = 4
	default:
		hdr[1] = 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(n))
		h = 10
	}
	wire := make([]byte, 0, h+n)
	wire = append(wire, hdr[:h]...)
	wire = append(wire, '4')
	wire = append(wire, packet...)
	return Frame{wire: wire, text: h + 1}
}

// Text is the socket.io packet text.
func (f Frame) Text() []byte { return f.wire[f.text:] }

// Bytes is the whole websocket frame, written to a websocket connection as it is.
func (f Frame) Bytes() []byte { return f.wire }

// Len is the packet text's length.
func (f Frame) Len() int { return len(f.wire) - f.text }
