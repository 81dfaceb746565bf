// Package historytest is the contract of history.Store as one test suite, run over the
// memory store and the Redis one so that they cannot drift apart. The recovery table
// ports the stream-mode rows of centrifugal/centrifuge's clientRecoverTests
// (broker_memory_test.go); its cache-mode rows keep only the latest publication, a
// mode Jetsocket does not have, and its two "limited" rows test a server-wide cap on
// recovered publications that HISTORY_SIZE already is here.
package historytest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jetsocket/jetsocket/server/history"
)

// Backend is one store under test.
type Backend struct {
	Store history.Store
	// Lose makes the store lose every channel's history at once (a Redis flush, a
	// lone node's restart).
	Lose func(t *testing.T)
}

// Factory returns a new, empty backend for one test; it cleans up with t.Cleanup.
type Factory func(t *testing.T) Backend

// shortTTL is the TTL of the rows that expire; the tests wait for the expiry (polling),
// they never assume how long it takes.
const shortTTL = 300 * time.Millisecond

// Run runs the whole contract against backends made by f.
func Run(t *testing.T, f Factory) {
	t.Run("RecoveryTable", func(t *testing.T) { recoveryTable(t, f) })
	t.Run("FirstUseStartsAnEpochReadersShare", func(t *testing.T) { firstUse(t, f(t)) })
	t.Run("OffsetsArePerChannelAndContiguous", func(t *testing.T) { perChannel(t, f(t)) })
	t.Run("ReadAfterAndLimit", func(t *testing.T) { readQuery(t, f(t)) })
	t.Run("BoundedBySize", func(t *testing.T) { bounded(t, f(t)) })
	t.Run("LosingHistoryChangesTheEpoch", func(t *testing.T) { lose(t, f(t)) })
	t.Run("ConcurrentAddsGetDistinctOffsets", func(t *testing.T) { concurrent(t, f(t)) })
	t.Run("KeepsThePublicationWhole", func(t *testing.T) { whole(t, f(t)) })
	t.Run("KeepsTheExcludedSocket", func(t *testing.T) { excluded(t, f(t)) })
}

type recoverRow struct {
	name      string
	size      int
	shortTTL  bool // expire the history before recovering
	pubs      int
	since     uint64
	recovered int
	ok        bool
}

// The stream-mode rows of centrifuge's table (its duplicated last row once). Its
// "from_same_position_in_expired_stream" recovers there, where the epoch outlives the
// history; here PRODUCT.md §14 has expiry change the epoch, so it does not.
var recoverRows = []recoverRow{
	{"empty_stream", 10, false, 0, 0, 0, true},
	{"from_position", 10, false, 10, 8, 2, true},
	{"from_position_that_already_gone", 10, false, 20, 8, 0, false},
	{"from_position_that_not_exist_yet", 10, false, 20, 108, 0, false},
	{"same_position_no_pubs_expected", 10, false, 7, 7, 0, true},
	{"empty_position_recover_expected", 10, false, 4, 0, 4, true},
	{"from_position_in_expired_stream", 10, true, 10, 8, 0, false},
	{"from_same_position_in_expired_stream", 10, true, 1, 1, 0, false},
	// Beyond centrifuge's rows: the edges of a full history.
	{"oldest_kept_is_next", 10, false, 20, 10, 10, true},
	{"one_before_oldest_kept", 10, false, 20, 9, 0, false},
}

func pub(i int) history.Publication {
	return history.Publication{Event: "e", Data: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`)}
}

func recoveryTable(t *testing.T, f Factory) {
	for _, row := range recoverRows {
		t.Run(row.name, func(t *testing.T) {
			ctx := context.Background()
			s := f(t).Store
			l := history.Limits{Size: row.size, TTL: time.Minute}
			if row.shortTTL {
				l.TTL = shortTTL
			}
			ch := "news-" + row.name
			start, err := s.Read(ctx, ch, history.Query{Limit: -1}, l)
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= row.pubs; i++ {
				if _, err := s.Add(ctx, ch, pub(i), l); err != nil {
					t.Fatal(err)
				}
			}
			epoch := start.Position.Epoch
			if row.shortTTL {
				waitExpired(t, s, ch, epoch, l)
			}
			pubs, pos, ok, err := history.Recover(ctx, s, ch, history.Position{Epoch: epoch, Offset: row.since}, l)
			if err != nil {
				t.Fatal(err)
			}
			if ok != row.ok || len(pubs) != row.recovered {
				t.Fatalf("recovered %v with %d publications, want %v with %d (position %+v)", ok, len(pubs), row.ok, row.recovered, pos)
			}
			for i, p := range pubs {
				if want := row.since + uint64(i) + 1; p.Offset != want || string(p.Data) != fmt.Sprintf(`{"n":%d}`, want) {
					t.Fatalf("publication %d: %+v, want offset %d", i, p, want)
				}
			}
			if !row.shortTTL && pos != (history.Position{Epoch: epoch, Offset: uint64(row.pubs)}) {
				t.Fatalf("position %+v, want %s/%d", pos, epoch, row.pubs)
			}
		})
	}
	t.Run("another_epoch", func(t *testing.T) {
		ctx := context.Background()
		s := f(t).Store
		l := history.Limits{Size: 10, TTL: time.Minute}
		for i := 1; i <= 3; i++ {
			if _, err := s.Add(ctx, "news", pub(i), l); err != nil {
				t.Fatal(err)
			}
		}
		pubs, pos, ok, err := history.Recover(ctx, s, "news", history.Position{Epoch: "not-this-one", Offset: 1}, l)
		if err != nil || ok || len(pubs) != 0 || pos.Offset != 3 {
			t.Fatalf("a position from another epoch: %v %d %+v %v", ok, len(pubs), pos, err)
		}
	})
}

// waitExpired waits until channel's history has expired: its epoch is not epoch.
func waitExpired(t *testing.T, s history.Store, channel, epoch string, l history.Limits) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Reading starts a new epoch once the old one expired, but does not keep a live
		// one alive (only publications extend it).
		res, err := s.Read(context.Background(), channel, history.Query{Limit: -1}, l)
		if err != nil {
			t.Fatal(err)
		}
		if res.Position.Epoch != epoch {
			if res.Position.Offset != 0 {
				t.Fatalf("a new epoch starts at 0, got %+v", res.Position)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("history of %s did not expire (TTL %s)", channel, l.TTL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func firstUse(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Store
	l := history.Limits{Size: 10, TTL: time.Minute}
	r1, err := s.Read(ctx, "a", history.Query{}, l)
	if err != nil || r1.Position.Epoch == "" || r1.Position.Offset != 0 || len(r1.Publications) != 0 {
		t.Fatalf("a channel never used: %+v %v", r1, err)
	}
	r2, _ := s.Read(ctx, "a", history.Query{}, l)
	if r2.Position != r1.Position {
		t.Fatalf("a second reader sees another epoch: %+v then %+v", r1.Position, r2.Position)
	}
	pos, err := s.Add(ctx, "a", pub(1), l)
	if err != nil || pos != (history.Position{Epoch: r1.Position.Epoch, Offset: 1}) {
		t.Fatalf("the first publication continues the readers' epoch: %+v %v, read %+v", pos, err, r1.Position)
	}
	other, _ := s.Add(ctx, "b", pub(1), l)
	if other.Epoch == pos.Epoch || len(other.Epoch) < 8 {
		t.Fatalf("epochs are per channel and random: %q %q", other.Epoch, pos.Epoch)
	}
}

func perChannel(t *testing.T, b Backend) {
	ctx := context.Background()
	l := history.Limits{Size: 10, TTL: time.Minute}
	for i := 1; i <= 3; i++ {
		for _, ch := range []string{"x", "y"} {
			pos, err := b.Store.Add(ctx, ch, pub(i), l)
			if err != nil || pos.Offset != uint64(i) {
				t.Fatalf("%s #%d: %+v %v", ch, i, pos, err)
			}
		}
	}
}

func readQuery(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Store
	l := history.Limits{Size: 10, TTL: time.Minute}
	for i := 1; i <= 5; i++ {
		s.Add(ctx, "q", pub(i), l)
	}
	cases := []struct {
		q    history.Query
		want []uint64
	}{
		{history.Query{}, []uint64{1, 2, 3, 4, 5}},
		{history.Query{After: 2}, []uint64{3, 4, 5}},
		{history.Query{After: 2, Limit: 2}, []uint64{3, 4}},
		{history.Query{Limit: 1}, []uint64{1}},
		{history.Query{After: 5}, nil},
		{history.Query{After: 99}, nil},
		{history.Query{Limit: -1}, nil},
	}
	for _, c := range cases {
		res, err := s.Read(ctx, "q", c.q, l)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, p := range res.Publications {
			got = append(got, p.Offset)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) || res.Position.Offset != 5 {
			t.Fatalf("%+v: %v at %+v, want %v", c.q, got, res.Position, c.want)
		}
	}
}

func bounded(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Store
	l := history.Limits{Size: 3, TTL: time.Minute}
	for i := 1; i <= 8; i++ {
		s.Add(ctx, "b", pub(i), l)
	}
	res, err := s.Read(ctx, "b", history.Query{}, l)
	if err != nil || len(res.Publications) != 3 || res.Publications[0].Offset != 6 || res.Publications[2].Offset != 8 {
		t.Fatalf("the newest 3 of 8 are kept: %+v %v", res, err)
	}
	// A limit lowered later trims at the next publication.
	l.Size = 2
	s.Add(ctx, "b", pub(9), l)
	res, _ = s.Read(ctx, "b", history.Query{}, l)
	if len(res.Publications) != 2 || res.Publications[0].Offset != 8 || res.Publications[1].Offset != 9 {
		t.Fatalf("after lowering the size to 2: %+v", res.Publications)
	}
	l.Size = 4
	s.Add(ctx, "b", pub(10), l)
	res, _ = s.Read(ctx, "b", history.Query{}, l)
	if len(res.Publications) != 3 || res.Publications[0].Offset != 8 || res.Publications[2].Offset != 10 {
		t.Fatalf("after raising the size to 4: %+v", res.Publications)
	}
}

func lose(t *testing.T, b Backend) {
	ctx := context.Background()
	l := history.Limits{Size: 10, TTL: time.Minute}
	before, _ := b.Store.Add(ctx, "l", pub(1), l)
	b.Store.Add(ctx, "l", pub(2), l)
	b.Lose(t)
	pubs, pos, ok, err := history.Recover(ctx, b.Store, "l", before, l)
	if err != nil || ok || len(pubs) != 0 || pos.Epoch == before.Epoch || pos.Offset != 0 {
		t.Fatalf("after the history was lost: recovered %v, %d publications, position %+v (was %+v), %v", ok, len(pubs), pos, before, err)
	}
	after, _ := b.Store.Add(ctx, "l", pub(3), l)
	if after != (history.Position{Epoch: pos.Epoch, Offset: 1}) {
		t.Fatalf("the new epoch counts from 1: %+v, read %+v", after, pos)
	}
}

func concurrent(t *testing.T, b Backend) {
	ctx := context.Background()
	l := history.Limits{Size: 1000, TTL: time.Minute}
	const writers, each = 8, 25
	var mu sync.Mutex
	seen := make(map[uint64]bool)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for i := range each {
				pos, err := b.Store.Add(ctx, "c", pub(i), l)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[pos.Offset] {
					t.Errorf("offset %d given twice", pos.Offset)
				}
				seen[pos.Offset] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for i := uint64(1); i <= writers*each; i++ {
		if !seen[i] {
			t.Fatalf("offset %d never given", i)
		}
	}
	res, _ := b.Store.Read(ctx, "c", history.Query{}, l)
	if len(res.Publications) != writers*each {
		t.Fatalf("kept %d of %d", len(res.Publications), writers*each)
	}
}

func whole(t *testing.T, b Backend) {
	ctx := context.Background()
	l := history.Limits{Size: 10, TTL: time.Minute}
	in := history.Publication{Offset: 77, Event: "client-typing", Data: json.RawMessage(`{"text":"héllo \"x\""}`), UserID: "u-1"}
	pos, err := b.Store.Add(ctx, "private-w", in, l)
	if err != nil || pos.Offset != 1 {
		t.Fatalf("the given offset is ignored: %+v %v", pos, err)
	}
	b.Store.Add(ctx, "private-w", history.Publication{Event: "no-data"}, l)
	res, err := b.Store.Read(ctx, "private-w", history.Query{}, l)
	if err != nil || len(res.Publications) != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	got := res.Publications[0]
	if got.Offset != 1 || got.Event != in.Event || string(got.Data) != string(in.Data) || got.UserID != in.UserID {
		t.Fatalf("changed on the way: %+v", got)
	}
	if p := res.Publications[1]; p.Event != "no-data" || len(p.Data) != 0 || p.UserID != "" {
		t.Fatalf("empty fields: %+v", p)
	}
}

// excluded: the socket a publication was not delivered to is kept with it, so that a
// replay to that socket can leave it out (PRODUCT.md §3, §4), through Recover too.
func excluded(t *testing.T, b Backend) {
	ctx := context.Background()
	l := history.Limits{Size: 10, TTL: time.Minute}
	b.Store.Add(ctx, "private-x", history.Publication{Event: "a", Except: "1.2"}, l)
	b.Store.Add(ctx, "private-x", history.Publication{Event: "b"}, l)
	b.Store.Add(ctx, "private-x", history.Publication{Event: "client-c", UserID: "u", Except: "3.4"}, l)
	pos, _ := b.Store.Read(ctx, "private-x", history.Query{Limit: -1}, l)
	pubs, _, ok, err := history.Recover(ctx, b.Store, "private-x", history.Position{Epoch: pos.Position.Epoch}, l)
	if err != nil || !ok || len(pubs) != 3 {
		t.Fatalf("%+v %v %v", pubs, ok, err)
	}
	want := []string{"1.2", "", "3.4"}
	for i, p := range pubs {
		if p.Except != want[i] {
			t.Fatalf("publication %d: except %q, want %q", i+1, p.Except, want[i])
		}
	}
	if !pubs[0].ExcludedFor("1.2") || pubs[0].ExcludedFor("3.4") || pubs[1].ExcludedFor("") || pubs[1].ExcludedFor("1.2") {
		t.Fatalf("ExcludedFor: %+v", pubs)
	}
}
