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

func marshalPayload(payload any) ([]byte, error) {
	if raw, ok := payload.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, errors.New("invalid raw JSON payload")
		}
		return raw, nil
	}
	return json.Marshal(payload)
}
