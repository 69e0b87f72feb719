package loadgen

import "github.com/HdrHistogram/hdrhistogram-go"

// The orchestrator (package bench) runs each load worker as a child process
// (`relay bench-worker`). It writes one Config as JSON on the worker's
// standard input, then Commands, one JSON object per line. The worker writes
// Reports, one JSON object per line, on its standard output. Anything on the
// worker's standard error is a diagnostic for humans.

// Config is everything a worker needs before it dials.
type Config struct {
	Worker int `json:"worker"`
	// Conns are the connections this worker opens, in dial order.
	Conns []Conn `json:"conns"`
	// SourceAddrs are loopback addresses to dial from, used round-robin so
	// that no single address runs out of ephemeral ports.
	SourceAddrs []string `json:"source_addrs"`
	// DialRate is this worker's share of the ramp, connections per second.
	DialRate float64 `json:"dial_rate"`
	// DialConcurrency bounds handshakes in flight.
	DialConcurrency int `json:"dial_concurrency"`
	// StatusEvery is the period of status reports, in milliseconds.
	StatusEveryMS int `json:"status_every_ms"`
}

// Conn is one simulated member.
type Conn struct {
	Addr  string `json:"addr"`  // node host:port
	Event string `json:"event"` // event ID
	User  string `json:"user"`  // user ID (open mode)
	// SenderRank orders the members that send: in a phase with N active
	// senders, ranks 0..N-1 send. -1 never sends.
	SenderRank int `json:"sender_rank"`
	// EventSize is the event's member count, so that a sender can count
	// the deliveries its actions are owed (EventSize - 1 each).
	EventSize int `json:"event_size"`
}

// Command is one instruction from the orchestrator.
type Command struct {
	// Cmd is "dial" (open every connection at DialRate), "phase" (start a
	// measured phase), "end_phase" (report the phase), "close" (close every
	// connection at Rate per second) or "exit".
	Cmd string `json:"cmd"`
	// Phase fields.
	Phase    string  `json:"phase,omitempty"`
	Senders  int     `json:"senders,omitempty"`   // ranks below this send
	CursorHz float64 `json:"cursor_hz,omitempty"` // per sender
	ActionHz float64 `json:"action_hz,omitempty"` // per sender
	// DrainMS is how long end_phase keeps receiving after the senders
	// stop, so that batches in flight are counted.
	DrainMS int `json:"drain_ms,omitempty"`
	// Close rate, connections per second.
	Rate float64 `json:"rate,omitempty"`
}

// Report is one line from a worker: Type says which fields are set.
type Report struct {
	Type   string  `json:"type"` // "status", "dialed", "phase", "closed", "error"
	Worker int     `json:"worker"`
	Status *Status `json:"status,omitempty"`
	Phase  *Phase  `json:"phase,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// Status is a worker's running totals.
type Status struct {
	UnixMS      int64            `json:"unix_ms"`
	Up          int              `json:"up"`           // connections open and welcomed
	Dialed      int              `json:"dialed"`       // handshakes completed since start
	DialFailed  map[string]int   `json:"dial_failed"`  // cause -> count
	Dropped     map[string]int   `json:"dropped"`      // connections ended by the server or the network: close code or cause -> count
	FramesIn    uint64           `json:"frames_in"`    // server frames received
	CursorsSent uint64           `json:"cursors_sent"` // messages sent
	ActionsSent uint64           `json:"actions_sent"`
	MissedSlots uint64           `json:"missed_slots"` // send slots that came more than one period late
	CPUSeconds  float64          `json:"cpu_seconds"`  // this worker's user+system CPU
	Extra       map[string]int64 `json:"extra,omitempty"`
}

// Phase is what a worker measured during one phase.
type Phase struct {
	Name       string `json:"name"`
	DurationMS int64  `json:"duration_ms"`
	// Latency from send to receipt at every other member, microseconds.
	// Same-node: the batch was built on the receiver's node.
	CursorSame  *hdrhistogram.Snapshot `json:"cursor_same"`
	CursorCross *hdrhistogram.Snapshot `json:"cursor_cross"`
	ActionSame  *hdrhistogram.Snapshot `json:"action_same"`
	ActionCross *hdrhistogram.Snapshot `json:"action_cross"`
	// ReceiveLag is receipt time minus the batch's ts (server clock, same
	// machine), microseconds, for batches built on the receiver's own node
	// (others also carry the broker's delay): when it grows, the worker is
	// falling behind.
	ReceiveLag *hdrhistogram.Snapshot `json:"receive_lag"`

	CursorsSent      uint64  `json:"cursors_sent"`
	ActionsSent      uint64  `json:"actions_sent"`
	ActionsExpected  uint64  `json:"actions_expected"`  // sum over actions sent of (EventSize - 1)
	ActionsReceived  uint64  `json:"actions_received"`  // from other members
	ActionDuplicates uint64  `json:"action_duplicates"` // same (sender, seq) seen twice by one member
	ActionGaps       uint64  `json:"action_gaps"`       // a sender's seq jumped forward at one member
	CursorsReceived  uint64  `json:"cursors_received"`  // cursor entries from other members
	FramesIn         uint64  `json:"frames_in"`
	BytesIn          uint64  `json:"bytes_in"`
	MissedSlots      uint64  `json:"missed_slots"`
	CPUSeconds       float64 `json:"cpu_seconds"`
}
