package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// The socket.io packet codec, both ways, for both protocol revisions the server speaks
// (4: socket.io-client 2.x; 5: 3.x and 4.x): what clients send is decoded here
// (DecodePacket) and everything the server sends is encoded here (EncodeEvent,
// EncodeAck, EncodeConnect, EncodeError, EncodeConnectError).

// PacketType is a socket.io (protocol v4, as spoken by socket.io-client 2.x) packet type.
type PacketType byte

const (
	PacketConnect     PacketType = 0
	PacketDisconnect  PacketType = 1
	PacketEvent       PacketType = 2
	PacketAck         PacketType = 3
	PacketError       PacketType = 4
	PacketBinaryEvent PacketType = 5
	PacketBinaryAck   PacketType = 6
)

// NoAck is the ID of a packet without an ack id.
const NoAck int64 = -1

// Packet is a decoded socket.io packet. For events, Event is the name and Args the
// remaining array elements, still raw JSON so each handler decodes only what it needs.
type Packet struct {
	Type      PacketType
	Namespace string // "/" for the root namespace
	ID        int64  // ack id, or NoAck
	Event     string
	Args      []json.RawMessage
	Data      []byte // raw JSON of non-event packets
}

var (
	errEmptyPacket = errors.New("empty packet")
	errPacketType  = errors.New("unknown packet type")
	errAttachments = errors.New("bad attachment count")
	errNamespace   = errors.New("bad namespace")
	errAckID       = errors.New("bad ack id")
	errEventArray  = errors.New("event payload must be a JSON array starting with the event name")
)

// maxAckID keeps ack ids within what JavaScript clients can represent exactly.
const maxAckID = 1<<53 - 1

// DecodePacket parses one socket.io text packet:
//
//	<type>[<attachments>-][<namespace>,][<ack id>][<json>]
//
// Malformed input gives an error, never a panic (see FuzzDecodePacket).
func DecodePacket(b []byte) (Packet, error) {
	p := Packet{Namespace: "/", ID: NoAck}
	if len(b) == 0 {
		return p, errEmptyPacket
	}
	if b[0] < '0' || b[0] > '6' {
		return p, errPacketType
	}
	p.Type = PacketType(b[0] - '0')
	rest := b[1:]

	if p.Type == PacketBinaryEvent || p.Type == PacketBinaryAck {
		i := bytes.IndexByte(rest, '-')
		if i < 1 || i > 6 || !allDigits(rest[:i]) {
			return p, errAttachments
		}
		rest = rest[i+1:]
	}

	if len(rest) > 0 && rest[0] == '/' {
		end := bytes.IndexByte(rest, ',')
		if end < 0 {
			end = len(rest)
		}
		nsp := rest[:end]
		if q := bytes.IndexByte(nsp, '?'); q >= 0 { // a query on the namespace: ignored
			nsp = nsp[:q]
		}
		if len(nsp) > 128 {
			return p, errNamespace
		}
		p.Namespace = string(nsp)
		rest = rest[end:]
		if len(rest) > 0 {
			rest = rest[1:] // the comma
		}
	}

	digits := 0
	for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' {
		digits++
	}
	if digits > 0 {
		id, err := strconv.ParseInt(string(rest[:digits]), 10, 64)
		if err != nil || id > maxAckID {
			return p, errAckID
		}
		p.ID = id
		rest = rest[digits:]
	}

	switch p.Type {
	case PacketEvent, PacketBinaryEvent:
		var arr []json.RawMessage
		if err := json.Unmarshal(rest, &arr); err != nil || len(arr) == 0 {
			return p, errEventArray
		}
		// A JSON string only: Unmarshal would read null into a string as "".
		if arr[0][0] != '"' {
			return p, errEventArray
		}
		if err := json.Unmarshal(arr[0], &p.Event); err != nil {
			return p, errEventArray
		}
		p.Args = arr[1:]
	case PacketAck, PacketBinaryAck:
		if p.ID == NoAck {
			return p, errAckID
		}
		if len(rest) > 0 {
			if !json.Valid(rest) {
				return p, fmt.Errorf("ack payload: invalid JSON")
			}
			p.Data = rest
		}
	default:
		if len(rest) > 0 {
			if !json.Valid(rest) {
				return p, fmt.Errorf("packet payload: invalid JSON")
			}
			p.Data = rest
		}
	}
	return p, nil
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}
