package hub_test

import (
	"testing"

	"github.com/jetsocket/jetsocket/server/history"
	"github.com/jetsocket/jetsocket/server/hub"
	"github.com/jetsocket/jetsocket/server/hub/hubtest"
)

// The memory backends against the contract the Redis ones meet too (cluster's tests).
func TestMemoryBackends(t *testing.T) {
	hubtest.Run(t, func(*testing.T) hubtest.Backend {
		return hubtest.Backend{Broker: hub.NewMemoryBroker(), Presence: hub.NewMemoryPresence(), Counts: hub.NewMemoryCounts()}
	})
}

// The memory backends are one node of the cluster contract.
func TestMemoryBackendsAsOneNode(t *testing.T) {
	hubtest.RunCluster(t, func(*testing.T) []hubtest.Backend {
		return []hubtest.Backend{{Broker: hub.NewMemoryBroker(), Presence: hub.NewMemoryPresence(), Counts: hub.NewMemoryCounts()}}
	})
}

// The memory broker with history against the contract the Redis one meets too.
func TestMemoryBrokerHistory(t *testing.T) {
	hubtest.RunHistory(t, func(_ *testing.T, p history.Policy) hub.Broker {
		return hub.NewMemoryBrokerWithHistory(history.NewMemory(), p)
	})
}
