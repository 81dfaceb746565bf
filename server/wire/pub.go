package wire

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
)

// Pub is the position of the publication a frame carries ({channel, epoch, offset}), and
// the frame's form for socket.io 4.x connection state recovery: the same EVENT with the
// publication's offset string as its last argument, which socket.io-client keeps and
// sends back when it reconnects. That form is built on first use and shared, as Alt is:
// one encoding per publication, none when no recovering client is subscribed.
type Pub struct {
	Channel string
	Epoch   string
	Offset  uint64

	once   sync.Once
	packet []byte // the plain EVENT's text
	withID Frame
}

// WithPub returns f carrying the position of its publication.
func (f Frame) WithPub(channel, epoch string, offset uint64) Frame {
	f.pub = &Pub{Channel: channel, Epoch: epoch, Offset: offset, packet: f.Text()}
	return f
}

// Pub is the frame's publication, nil when it has no position.
func (f Frame) Pub() *Pub { return f.pub }

// OffsetString is the publication's id as socket.io clients see it:
// <epoch>:<offset>:<channel> (epochs and offsets have no ':', channel names may).
func (p *Pub) OffsetString() string {
	return p.Epoch + ":" + strconv.FormatUint(p.Offset, 10) + ":" + p.Channel
}

// ParseOffset reads an OffsetString.
func ParseOffset(s string) (channel, epoch string, offset uint64, ok bool) {
	epoch, rest, ok1 := strings.Cut(s, ":")
	num, channel, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 || epoch == "" || channel == "" {
		return "", "", 0, false
	}
	offset, err := strconv.ParseUint(num, 10, 64)
	if err != nil || offset == 0 {
		return "", "", 0, false
	}
	return channel, epoch, offset, true
}

// WithOffset is the frame with the publication's offset string as the EVENT's last
// argument (2["event",{...},"<offset>"]), built once and shared by every recipient.
func (p *Pub) WithOffset() Frame {
	p.once.Do(func() {
		id, _ := json.Marshal(p.OffsetString())
		text := p.packet
		buf := make([]byte, 0, len(text)+len(id)+1)
		buf = append(buf, text[:len(text)-1]...) // the closing ]
		buf = append(buf, ',')
		buf = append(buf, id...)
		buf = append(buf, ']')
		p.withID = NewFrame(buf)
		p.packet = nil
	})
	return p.withID
}
