// Package loadgen is the bench harness's load worker: one process (`relay
// bench-worker`, which calls Main) that holds thousands of WebSocket members,
// sends cursors and actions stamped with their send time, and measures what
// it receives. The orchestrator drives it over stdin and stdout with the
// types in protocol.go.
//
// # Connections
//
// Each connection is dialed on a blocking socket by a bounded pool of
// dialers (Config.DialConcurrency, paced by a token bucket at
// Config.DialRate), upgraded by a handshake written here, and then handed to
// nbio's event loops (Engine.AddConn). From then on it has no goroutine and
// no buffer of its own: a read is parsed in place, and only a frame that
// arrives in pieces borrows a pooled buffer until it is whole.
//
// # Goroutines
//
// Main owns them all and stops them all before it returns: the command
// reader, the nbio event loops (plus nbio's timer goroutine, which runs
// OnClose), one sender scheduler, one status reporter, and during "dial" the
// dialer pool. Receive state is sharded by event loop (shard, in
// receive.go): each loop takes its own shard's lock per read, so the lock is
// almost never contended and the phase histograms need no atomics. Lock
// order: a shard's lock, then nbio's per-connection lock (inside Write and
// Close); nothing holds two shard locks. nbio runs OnClose on another
// goroutine, so closing a socket under a shard lock cannot deadlock.
//
// # What is measured
//
// A cursor's x is its send time in Unix milliseconds (with a fraction) and y
// the sender's cursor count; an action's d is [send UnixNano, seq]. Every
// receiver records send-to-receipt latency of entries from other users,
// split by whether the batch was built on the node that welcomed it
// (same-node) or came through the broker (cross-node), and, per batch,
// receipt minus the batch's ts.
//
// Actions are checked for exactly-once delivery per (receiver, sender). An
// action's seq is phase<<32 | n: phase counts "phase" commands (every worker
// gets the same ones, so they agree), n counts the sender's actions in that
// phase from 1. So a new phase restarts every stream at n = 1 without any
// reset racing against traffic, and an entry of phase k+1 that reaches a
// worker before its own "phase" command starts that worker's phase k+1 early
// rather than being lost. ActionsReceived counts distinct (sender, seq)
// arrivals; duplicates and skipped seqs are counted apart, so that
// ActionsReceived + ActionGaps == ActionsExpected when nothing is lost
// outside the phase window. Entries of a phase that has ended count for
// nothing.
//
// # Causes
//
// DialFailed keys: refused, timeout, http-<status>, addr-in-use,
// eaddrnotavail, emfile, reset, eof, handshake, nbio (the event loops
// refused the socket), other. Dropped keys: close-<code> (the server's close
// frame), bad-frame (a frame we could not parse), eof, reset, timeout, other.
// Status.Extra: open (sockets held), bad_frames (frames or entries that did
// not parse), unexpected_frames (fragments and text, which the relay never
// sends), foreign_actions (actions whose value is not one of our stamps).
package loadgen
