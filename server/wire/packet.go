package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// EncodeEvent builds the text of an EVENT packet for the root namespace. Broadcasts call
// it once and hand the same bytes to every recipient.
func EncodeEvent(event string, payload any) ([]byte, error) {
	name, err := json.Marshal(event)
	if err != nil {
		return nil, err
	}
	body, err := marshalPayload(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", event, err)
	}
	buf := make([]byte, 0, 4+len(name)+len(body))
	buf = append(buf, '2', '[')
	buf = append(buf, name...)
	buf = append(buf, ',')
	buf = append(buf, body...)
	buf = append(buf, ']')
	return buf, nil
}

// EncodeAck builds the text of an ACK packet answering ack id id with payload.
func EncodeAck(id int64, payload any) ([]byte, error) {
	body, err := marshalPayload(payload)
	if err != nil {
		return nil, fmt.Errorf("encode ack: %w", err)
	}
	buf := make([]byte, 0, 24+len(body))
	buf = append(buf, '3')
	buf = strconv.AppendInt(buf, id, 10)
	buf = append(buf, '[')
	buf = append(buf, body...)
	buf = append(buf, ']')
	return buf, nil
}

// EncodeConnect builds a CONNECT packet for the root namespace: bare ("0") for a
// socket.io 4 client, which is sent it unasked; with data ({sid, pid?}) as the answer to
// a socket.io 5 client's CONNECT.
func EncodeConnect(data any) ([]byte, error) {
	if data == nil {
		return []byte{'0'}, nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encode connect: %w", err)
	}
	return append([]byte{'0'}, b...), nil
}

// EncodeError builds a socket.io 4 ERROR packet for a namespace (socket.io-client 2.x
// turns it into an 'error' event on that namespace's socket).
func EncodeError(namespace, msg string) []byte {
	m, _ := json.Marshal(msg) // a string always encodes
	return withNamespace('4', namespace, m)
}

// EncodeConnectError builds a socket.io 5 CONNECT_ERROR: 4[<nsp>,]{"message","data"?}.
// data must be JSON-encodable (the server's own maps of strings and numbers).
func EncodeConnectError(namespace, message string, data any) []byte {
	body := map[string]any{"message": message}
	if data != nil {
		body["data"] = data
	}
	b, _ := json.Marshal(body)
	return withNamespace('4', namespace, b)
}

// withNamespace is a packet of type t for namespace ("/" needs no prefix) with body.
func withNamespace(t byte, namespace string, body []byte) []byte {
	if namespace == "/" || namespace == "" {
		return append([]byte{t}, body...)
	}
	buf := make([]byte, 0, 2+len(namespace)+len(body))
	buf = append(buf, t)
	buf = append(buf, namespace...)
	buf = append(buf, ',')
	return append(buf, body...)
}

func marshalPayload(payload any) ([]byte, error) {
	if raw, ok := payload.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, errors.New("invalid raw JSON payload")
		}
		return raw, nil
	}
	return json.Marshal(payload)
}
