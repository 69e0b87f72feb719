// Package server is one relay node: the HTTP routes and their checks
// (event ID, upgrade, origin, identity, capacity), the registry of events
// that have members on this node, the per-event batch state, and the tick
// workers that flush batches to members and to the bridge.
//
// Data path: a client frame is decoded on its connection's event loop and
// folded into its event's pending batch (cursor moves coalesced per user,
// actions appended as the exact bytes received). The event's tick worker
// encodes the batch once, writes the same frame bytes to every local member
// and hands the payload to the bridge. Batches from other nodes arrive from
// the bridge and are written to local members by the same worker, unchanged.
//
// Goroutines: a fixed set of tick workers and one liveness sweeper, all
// started by Start and stopped by Shutdown. None is started per connection,
// per event or per message.
//
// Lock order, outermost first: registry shard, event.mu, worker.mu. The
// session shards' locks are never held with any other lock. Functions that
// expect a lock held say so in their name (…Locked) or comment.
package server
