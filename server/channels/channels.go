// Package channels knows channel names and who may subscribe to them: the Pusher
// Channels naming model and the rules of PRODUCT.md §5, as pure functions.
package channels

import (
	"strings"

	"github.com/jetsocket/jetsocket/server/errs"
)

// MaxNameLength is the longest channel name, as in Pusher.
const MaxNameLength = 164

// Kind is a channel's type, given by its name's prefix.
type Kind int

const (
	Public Kind = iota
	Private
	Presence
	PrivateEncrypted
)

func (k Kind) String() string {
	switch k {
	case Private:
		return "private"
	case Presence:
		return "presence"
	case PrivateEncrypted:
		return "private-encrypted"
	default:
		return "public"
	}
}

// Prefixes of the channel kinds. private-encrypted- is checked before private-.
const (
	PrefixPrivate          = "private-"
	PrefixPresence         = "presence-"
	PrefixPrivateEncrypted = "private-encrypted-"
)

// Channel is a parsed, valid channel name.
type Channel struct {
	Name string // the full name
	Kind Kind
	Rest string // the name after its kind's prefix
}

// ClientEventsAllowed reports whether clients may send client-* events on the channel:
// only private and presence ones (never public, never encrypted: the server could not
// tell ciphertext from garbage and clients hold the key).
func (c Channel) ClientEventsAllowed() bool { return c.Kind == Private || c.Kind == Presence }

// Cache reports whether c is a cache channel (cache-, private-cache-,
// private-encrypted-cache-, presence-cache-): a new subscriber gets its last event.
func (c Channel) Cache() bool { return strings.HasPrefix(c.Rest, "cache-") }

// Parse validates name and classifies it. The error is an *errs.Error of kind Invalid.
func Parse(name string) (Channel, error) {
	if name == "" {
		return Channel{}, errs.New(errs.Invalid, errs.CodeInvalidChannel, "channel name is empty")
	}
	if len(name) > MaxNameLength {
		return Channel{}, errs.New(errs.Invalid, errs.CodeInvalidChannel, "channel name is longer than 164 characters")
	}
	for i := 0; i < len(name); i++ {
		if !validByte(name[i]) {
			return Channel{}, errs.New(errs.Invalid, errs.CodeInvalidChannel, "channel name may only contain letters, digits and - _ = @ , . ;")
		}
	}
	c := Channel{Name: name, Kind: Public, Rest: name}
	switch {
	case strings.HasPrefix(name, PrefixPrivateEncrypted):
		c.Kind, c.Rest = PrivateEncrypted, name[len(PrefixPrivateEncrypted):]
	case strings.HasPrefix(name, PrefixPrivate):
		c.Kind, c.Rest = Private, name[len(PrefixPrivate):]
	case strings.HasPrefix(name, PrefixPresence):
		c.Kind, c.Rest = Presence, name[len(PrefixPresence):]
	}
	if c.Kind != Public && c.Rest == "" {
		return Channel{}, errs.New(errs.Invalid, errs.CodeInvalidChannel, "channel name has nothing after its prefix")
	}
	return c, nil
}

// validByte matches Pusher's channel name alphabet: ^[-a-zA-Z0-9_=@,.;]+$
func validByte(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return strings.IndexByte("-_=@,.;", b) >= 0
}
