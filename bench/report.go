package bench

import "time"

// SchemaID names the report format; bump it when a field changes meaning.
const SchemaID = "relay-bench/v1"

// Report is bench-report.json: one run of `relay bench`, with every figure
// it measured, the machine and the flags. bench/report.schema.json is its
// JSON Schema; keep the two in step.
type Report struct {
	Schema     string            `json:"schema"`
	Preset     string            `json:"preset"`
	Started    time.Time         `json:"started"`
	Finished   time.Time         `json:"finished"`
	DurationS  float64           `json:"duration_s"`
	Machine    Machine           `json:"machine"`
	Flags      map[string]string `json:"flags"`
	Warnings   []string          `json:"warnings"`
	Runs       []Run             `json:"runs"`
	Comparison *Comparison       `json:"comparison,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	Hostname      string      `json:"hostname"`
	CPUs          int         `json:"cpus"`
	CPUModel      string      `json:"cpu_model"`
	MemTotalBytes uint64      `json:"mem_total_bytes"`
	Kernel        string      `json:"kernel"`
	GoVersion     string      `json:"go_version"`
	NoFileSoft    uint64      `json:"nofile_soft"`
	NoFileHard    uint64      `json:"nofile_hard"`
	Tuning        []TuneCheck `json:"tuning"`
}

// TuneCheck is one line of `deploy/tune.sh check --json`.
type TuneCheck struct {
	Key     string `json:"key"`
	Current string `json:"current"`
	Wanted  string `json:"wanted"`
	OK      bool   `json:"ok"`
}

// Run is the load applied to one kind of target: this relay, or the
// baseline it is compared with.
type Run struct {
	Target  string         `json:"target"` // "relay" or "baseline"
	Label   string         `json:"label"`  // what the target is, in words
	Nodes   []NodeResult   `json:"nodes"`
	Workers []WorkerResult `json:"workers"`
	Totals  Totals         `json:"totals"`
	Phases  []PhaseResult  `json:"phases"`
	Series  []Sample       `json:"series"`
	Broker  *BrokerResult  `json:"broker,omitempty"`
}

// NodeResult is one relay node process.
type NodeResult struct {
	ID               string  `json:"id"`
	Addr             string  `json:"addr"`
	PID              int     `json:"pid"`
	IdleRSSBytes     uint64  `json:"idle_rss_bytes"` // before any connection
	IdleGoroutines   int     `json:"idle_goroutines"`
	PeakConns        int     `json:"peak_conns"`
	RSSBytes         uint64  `json:"rss_bytes"` // at peak connections
	HeapBytes        uint64  `json:"heap_bytes"`
	Goroutines       int     `json:"goroutines"`
	RSSPerConnBytes  float64 `json:"rss_per_conn_bytes"` // (RSS - idle RSS) / connections
	HeapPerConnBytes float64 `json:"heap_per_conn_bytes"`
	CPUSeconds       float64 `json:"cpu_seconds"`
	FramesOut        uint64  `json:"frames_out"`
	Levels           []Level `json:"levels"` // as connections grew
}

// Level is a node's figures at one connection count.
type Level struct {
	Conns      int    `json:"conns"`
	RSSBytes   uint64 `json:"rss_bytes"`
	HeapBytes  uint64 `json:"heap_bytes"`
	Goroutines int    `json:"goroutines"`
}

// WorkerResult is one load-worker process.
type WorkerResult struct {
	ID          int            `json:"id"`
	PID         int            `json:"pid"`
	Conns       int            `json:"conns"`
	Up          int            `json:"up"`
	CPUSeconds  float64        `json:"cpu_seconds"`
	MissedSlots uint64         `json:"missed_slots"`
	DialFailed  map[string]int `json:"dial_failed"`
	Dropped     map[string]int `json:"dropped"`
}

// Totals are the run's figures over all nodes and workers.
type Totals struct {
	ConnsTarget      int            `json:"conns_target"`
	ConnsHeld        int            `json:"conns_held"` // up at the end of the hold
	ConnsFailed      int            `json:"conns_failed"`
	FailedByCause    map[string]int `json:"failed_by_cause"`
	DroppedByCause   map[string]int `json:"dropped_by_cause"`
	RampSeconds      float64        `json:"ramp_seconds"`
	HandshakesPerSec float64        `json:"handshakes_per_sec"`
	RSSPerConnBytes  float64        `json:"rss_per_conn_bytes"`
	HeapPerConnBytes float64        `json:"heap_per_conn_bytes"`
	// Kernel socket memory from /proc/net/sockstat (TCP mem pages), before
	// the ramp and at peak.
	KernelSockMemIdleBytes uint64  `json:"kernel_sock_mem_idle_bytes"`
	KernelSockMemPeakBytes uint64  `json:"kernel_sock_mem_peak_bytes"`
	KernelBytesPerSocket   float64 `json:"kernel_bytes_per_socket"`
	// Kernel slab memory (/proc/meminfo Slab: socket structures, inodes,
	// dentries) before the ramp and at peak, and its growth per socket.
	// Both ends of every connection are on this machine, so sockets count
	// both.
	KernelSlabIdleBytes uint64  `json:"kernel_slab_idle_bytes"`
	KernelSlabPeakBytes uint64  `json:"kernel_slab_peak_bytes"`
	KernelSlabPerSocket float64 `json:"kernel_slab_per_socket"`
	RelayCPUSeconds     float64 `json:"relay_cpu_seconds"`
	WorkerCPUSeconds    float64 `json:"worker_cpu_seconds"`
	// GoroutinesFlat: no node's goroutine count grew with its connections
	// (peak minus idle is below a small fixed allowance).
	GoroutinesFlat bool `json:"goroutines_flat"`
}

// PhaseResult is one measured phase (a steady load, or one step of
// saturate).
type PhaseResult struct {
	Name      string  `json:"name"`
	DurationS float64 `json:"duration_s"`
	Senders   int     `json:"senders"`
	CursorHz  float64 `json:"cursor_hz"`
	ActionHz  float64 `json:"action_hz"`
	// Latency from send to receipt at every other member, in ms, by kind:
	// cursor_same, cursor_cross, action_same, action_cross, and
	// receive_lag (receipt minus the batch's build time).
	Latency    map[string]Percentiles `json:"latency"`
	Histograms map[string][]Bucket    `json:"histograms"`

	ActionsSent      uint64 `json:"actions_sent"`
	ActionsExpected  uint64 `json:"actions_expected"` // sent x (members - 1)
	ActionsReceived  uint64 `json:"actions_received"`
	ActionDuplicates uint64 `json:"action_duplicates"`
	ActionGaps       uint64 `json:"action_gaps"`
	CursorsSent      uint64 `json:"cursors_sent"`
	CursorsReceived  uint64 `json:"cursors_received"`

	FramesDelivered        uint64  `json:"frames_delivered"` // frames the nodes wrote
	FramesPerSec           float64 `json:"frames_per_sec"`
	RelayCPUSeconds        float64 `json:"relay_cpu_seconds"`
	FramesPerRelayCPUSec   float64 `json:"frames_per_relay_cpu_sec"`
	RelayCPUSecPerFrame    float64 `json:"relay_cpu_sec_per_frame"`
	WorkerCPUSeconds       float64 `json:"worker_cpu_seconds"`
	MissedSlots            uint64  `json:"missed_slots"`
	BrokerPublishesPerSec  float64 `json:"broker_publishes_per_sec"`
	BrokerDeliveriesPerSec float64 `json:"broker_deliveries_per_sec"`
	// BrokerPublishesBound is the most a batching relay can publish:
	// for each event with senders, the nodes its senders are on, times
	// ticks per second. Clients sending faster than this is what batching
	// absorbs.
	BrokerPublishesBound float64 `json:"broker_publishes_bound"`
	ClientSendsPerSec    float64 `json:"client_sends_per_sec"`
}

// Percentiles of one latency histogram, milliseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// Bucket is one bar of a latency histogram: Count values up to UpToMS.
type Bucket struct {
	UpToMS float64 `json:"up_to_ms"`
	Count  int64   `json:"count"`
}

// Sample is one point of the run's time series, taken every second.
type Sample struct {
	T            float64 `json:"t"` // seconds since the run started
	Conns        int     `json:"conns"`
	RSSBytes     uint64  `json:"rss_bytes"`  // all nodes
	HeapBytes    uint64  `json:"heap_bytes"` // all nodes
	Goroutines   int     `json:"goroutines"` // all nodes
	FramesPerSec float64 `json:"frames_per_sec"`
	RelayCPU     float64 `json:"relay_cpu"`  // cores busy, all nodes
	WorkerCPU    float64 `json:"worker_cpu"` // cores busy, all workers
	SockMemBytes uint64  `json:"sock_mem_bytes"`
}

// BrokerResult is what RabbitMQ held and moved during the steady phase.
type BrokerResult struct {
	Queues           int     `json:"queues"`
	Bindings         int     `json:"bindings"`
	Consumers        int     `json:"consumers"`
	Channels         int     `json:"channels"`
	PublishesPerSec  float64 `json:"publishes_per_sec"`
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
}

// Comparison is relay against baseline under the same load, as ratios
// relay / baseline (below 1 means the relay uses less).
type Comparison struct {
	MemPerConnRatio    float64 `json:"mem_per_conn_ratio"`
	CPUPerFrameRatio   float64 `json:"cpu_per_frame_ratio"`
	RelayCPURatio      float64 `json:"relay_cpu_ratio"` // relay CPU-seconds of the first phase
	P99Ratio           float64 `json:"p99_ratio"`
	BrokerMsgsRatio    float64 `json:"broker_msgs_ratio"`
	RelayMemPerConn    float64 `json:"relay_mem_per_conn_bytes"`
	BaselineMemPerConn float64 `json:"baseline_mem_per_conn_bytes"`
}
