package main

import (
	"testing"

	"github.com/jetsocket/jetsocket/bench/load"
)

// -eio takes pusher beside the Engine.IO versions, and only Jetsocket servers get it.
func TestPusherClientKind(t *testing.T) {
	s := shape{eios: "3, 4,pusher", v4Token: "auth"}
	hs, err := s.handshakes()
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, h := range hs {
		labels = append(labels, h.Label())
	}
	if len(labels) != 3 || labels[0] != "v2" || labels[1] != "v4+auth" || labels[2] != "pusher" {
		t.Fatalf("labels %v", labels)
	}
	for _, tc := range []struct {
		server string
		want   int
	}{{"jetsocket", 3}, {"baseline", 3}, {"node", 2}, {"floor", 2}} {
		if got := serverRuns(tc.server, hs); len(got) != tc.want {
			t.Errorf("%s: %d runs %v, want %d", tc.server, len(got), got, tc.want)
		}
	}
	if got := serverRuns("centrifugo", hs); len(got) != 1 || got[0].Protocol != load.ProtocolCentrifugo {
		t.Errorf("centrifugo: %v", got)
	}
	if _, err := (&shape{eios: "3,pushr", v4Token: "auth"}).handshakes(); err == nil {
		t.Error("a misspelt kind was accepted")
	}
}
