package bench

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Config is one bench run. Zero values take the defaults of the preset.
type Config struct {
	Preset string // default, quick, idle, live, saturate, many-events

	Conns      int      // total connections
	Nodes      int      // relay nodes to start; 0: as many as the open-file limit needs
	Targets    []string // addresses of running nodes to use instead of starting any
	Workers    int      // load workers; 0: as many as the open-file limit needs
	EventSize  int      // members per event (mixers), when MixerMin/Max are 0
	MixerMin   int      // mixer sizes drawn from MixerMin..MixerMax
	MixerMax   int
	Lounges    int // large events ...
	LoungeSize int // ... of this many members; the rest go to mixers

	Senders  int     // members that send, one per event as far as events go
	CursorHz float64 // per sender
	ActionHz float64 // per sender
	Tick     time.Duration

	DialRate float64       // connections per second over all workers
	Hold     time.Duration // length of each measured phase
	// Steps are sender counts for the saturate preset; it stops after the
	// first step whose p99 passes StepLimit.
	Steps     []int
	StepLimit time.Duration

	AMQPURL string // broker for multi-node runs; empty runs one standalone node
	Compare string // "baseline" runs the same load against bench/baseline too

	Out        string // report path without extension
	RelayBin   string // the relay binary; default: this executable
	TuneScript string // deploy/tune.sh; found next to the binary or in the working directory
	Progress   bool   // draw a progress bar (else a line every few seconds)
}

// Presets are the named workloads of bench/README.md.
var Presets = map[string]Config{
	"default": {Conns: 10_000, EventSize: 50, Senders: 100, CursorHz: 10, ActionHz: 1,
		Tick: 50 * time.Millisecond, DialRate: 2_000, Hold: 30 * time.Second},
	"quick": {Conns: 3_000, EventSize: 50, Senders: 20, CursorHz: 10, ActionHz: 2,
		Tick: 50 * time.Millisecond, DialRate: 2_000, Hold: 8 * time.Second},
	"idle": {Conns: 100_000, EventSize: 50, Senders: 0,
		Tick: 50 * time.Millisecond, DialRate: 4_000, Hold: 60 * time.Second},
	"live": {Conns: 100_000, EventSize: 50, Senders: 100, CursorHz: 10, ActionHz: 1,
		Tick: 50 * time.Millisecond, DialRate: 4_000, Hold: 60 * time.Second},
	"saturate": {Conns: 20_000, EventSize: 50, CursorHz: 10, ActionHz: 1,
		Tick: 50 * time.Millisecond, DialRate: 4_000, Hold: 15 * time.Second,
		Steps: []int{10, 25, 50, 100, 200, 400, 800, 1600}, StepLimit: 250 * time.Millisecond},
	"many-events": {Conns: 75_000, MixerMin: 5, MixerMax: 10, Senders: 1_000, CursorHz: 5, ActionHz: 0.5,
		Tick: 50 * time.Millisecond, DialRate: 4_000, Hold: 60 * time.Second},
}

// PresetNames lists the presets, sorted.
func PresetNames() string {
	var names []string
	for n := range Presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// withDefaults fills zero fields from the preset.
func (c Config) withDefaults() (Config, error) {
	if c.Preset == "" {
		c.Preset = "default"
	}
	p, ok := Presets[c.Preset]
	if !ok {
		return c, fmt.Errorf("bench: unknown preset %q: pick one of %s", c.Preset, PresetNames())
	}
	if c.Conns == 0 {
		c.Conns = p.Conns
	}
	if c.EventSize == 0 && c.MixerMin == 0 {
		c.EventSize, c.MixerMin, c.MixerMax = p.EventSize, p.MixerMin, p.MixerMax
	}
	if c.Senders < 0 {
		c.Senders = 0
	} else if c.Senders == 0 {
		c.Senders = p.Senders
	}
	if c.CursorHz == 0 {
		c.CursorHz = p.CursorHz
	}
	if c.ActionHz == 0 {
		c.ActionHz = p.ActionHz
	}
	if c.Tick == 0 {
		c.Tick = p.Tick
	}
	if c.DialRate == 0 {
		c.DialRate = p.DialRate
	}
	if c.Hold == 0 {
		c.Hold = p.Hold
	}
	if len(c.Steps) == 0 {
		c.Steps = p.Steps
	}
	if c.StepLimit == 0 {
		c.StepLimit = p.StepLimit
	}
	if c.Out == "" {
		c.Out = "bench-report"
	}
	if c.MixerMin > 0 && c.MixerMax < c.MixerMin {
		c.MixerMax = c.MixerMin
	}
	if c.EventSize == 0 && c.MixerMin == 0 {
		c.EventSize = 50
	}
	if c.Conns <= 0 {
		return c, fmt.Errorf("bench: -conns must be positive")
	}
	if c.Compare != "" && c.Compare != "baseline" {
		return c, fmt.Errorf("bench: -compare takes only \"baseline\"")
	}
	return c, nil
}
