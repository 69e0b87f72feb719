package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// sampleReport is a fully populated report: two runs (relay and baseline)
// on two nodes and four workers, two phases each, a 20-point series,
// memory levels, histograms and a comparison. Its numbers are made up but
// shaped like a real run; it is rebuilt on every call, so tests may edit it.
func sampleReport() *Report {
	start := time.Date(2025, 12, 3, 14, 0, 0, 0, time.UTC)
	relay := sampleRun(sampleShape{
		target: "relay", label: "relay (nbio, batching bridge)", nodePrefix: "relay",
		rssPerConn: 3_400, heapPerConn: 2_100, goroutinesPerConn: 0,
		cpuPerFrame: 1.1e-6, latencyMS: 3, failed: map[string]int{},
	})
	baseline := sampleRun(sampleShape{
		target: "baseline", label: "baseline (gorilla/websocket, goroutine per conn)", nodePrefix: "base",
		rssPerConn: 41_000, heapPerConn: 22_500, goroutinesPerConn: 2,
		cpuPerFrame: 2.0e-6, latencyMS: 9, failed: map[string]int{"timeout": 212, "reset": 7},
	})
	return &Report{
		Schema:    SchemaID,
		Preset:    "c100k-2node",
		Started:   start,
		Finished:  start.Add(14*time.Minute + 30*time.Second),
		DurationS: 870,
		Machine: Machine{
			Hostname:      "bench-1",
			CPUs:          32,
			CPUModel:      "AMD EPYC 7B13 64-Core Processor",
			MemTotalBytes: 128 << 30,
			Kernel:        "6.8.0-49-generic",
			GoVersion:     "go1.26.8",
			NoFileSoft:    1 << 20,
			NoFileHard:    1 << 20,
			Tuning: []TuneCheck{
				{Key: "fs.nr_open", Current: "2097152", Wanted: ">= 2097152", OK: true},
				{Key: "net.core.somaxconn", Current: "4096", Wanted: ">= 65535", OK: false},
				{Key: "net.ipv4.ip_local_port_range", Current: "1024 65535", Wanted: "1024 65535", OK: true},
			},
		},
		Flags: map[string]string{
			"conns":    "100000",
			"nodes":    "2",
			"workers":  "4",
			"room":     "50",
			"cursorHz": "20",
			"broker":   "amqp://rabbit:5672/",
		},
		Warnings: []string{
			"net.core.somaxconn is 4096, below 65535: handshakes may queue <during> the ramp",
			"baseline: 219 connections failed (timeout 212, reset 7)",
		},
		Runs: []Run{relay, baseline},
		Comparison: &Comparison{
			MemPerConnRatio:    3_400.0 / 41_000,
			CPUPerFrameRatio:   1.1 / 2.0,
			RelayCPURatio:      1.1 / 2.0,
			P99Ratio:           0.34,
			BrokerMsgsRatio:    0.02,
			RelayMemPerConn:    3_400,
			BaselineMemPerConn: 41_000,
		},
	}
}

// sampleShape is what differs between the relay and the baseline in
// sampleReport.
type sampleShape struct {
	target, label, nodePrefix string
	rssPerConn, heapPerConn   float64
	goroutinesPerConn         int
	cpuPerFrame               float64 // relay CPU-seconds per frame
	latencyMS                 float64 // median latency
	failed                    map[string]int
}

func sampleRun(s sampleShape) Run {
	const (
		conns     = 100_000
		nodes     = 2
		workers   = 4
		idleRSS   = 24 << 20
		idleHeap  = 8 << 20
		idleGor   = 40
		frameRate = 2_000_000.0
	)
	failed := 0
	for _, n := range s.failed {
		failed += n
	}
	run := Run{Target: s.target, Label: s.label}
	for i := range nodes {
		perNode := conns / nodes
		n := NodeResult{
			ID:               fmt.Sprintf("%s-%c", s.nodePrefix, 'a'+i),
			Addr:             fmt.Sprintf("10.0.0.%d:8080", 11+i),
			PID:              4100 + i,
			IdleRSSBytes:     idleRSS,
			IdleGoroutines:   idleGor,
			PeakConns:        perNode,
			RSSBytes:         uint64(idleRSS + s.rssPerConn*float64(perNode)),
			HeapBytes:        uint64(idleHeap + s.heapPerConn*float64(perNode)),
			Goroutines:       idleGor + s.goroutinesPerConn*perNode,
			RSSPerConnBytes:  s.rssPerConn,
			HeapPerConnBytes: s.heapPerConn,
			CPUSeconds:       frameRate * 120 * s.cpuPerFrame / nodes,
			FramesOut:        uint64(frameRate * 120 / nodes),
		}
		for l := 0; l <= 10; l++ {
			c := perNode * l / 10
			wobble := 1 + 0.03*math.Sin(float64(l+i))
			n.Levels = append(n.Levels, Level{
				Conns:      c,
				RSSBytes:   uint64((idleRSS + s.rssPerConn*float64(c)) * wobble),
				HeapBytes:  uint64((idleHeap + s.heapPerConn*float64(c)) * wobble),
				Goroutines: idleGor + s.goroutinesPerConn*c + l%3,
			})
		}
		run.Nodes = append(run.Nodes, n)
	}
	for i := range workers {
		w := WorkerResult{
			ID: i, PID: 5200 + i, Conns: conns / workers, Up: conns/workers - failed/workers,
			CPUSeconds: 95 + 4*float64(i), MissedSlots: uint64(3 * i),
			DialFailed: map[string]int{}, Dropped: map[string]int{},
		}
		for cause, n := range s.failed {
			w.DialFailed[cause] = n / workers
		}
		run.Workers = append(run.Workers, w)
	}
	run.Totals = Totals{
		ConnsTarget:            conns,
		ConnsHeld:              conns - failed,
		ConnsFailed:            failed,
		FailedByCause:          s.failed,
		DroppedByCause:         map[string]int{},
		RampSeconds:            10,
		HandshakesPerSec:       float64(conns-failed) / 10,
		RSSPerConnBytes:        s.rssPerConn,
		HeapPerConnBytes:       s.heapPerConn,
		KernelSockMemIdleBytes: 12 << 20,
		KernelSockMemPeakBytes: 12<<20 + conns*4_600,
		KernelBytesPerSocket:   4_600,
		RelayCPUSeconds:        frameRate * 120 * s.cpuPerFrame,
		WorkerCPUSeconds:       410,
		GoroutinesFlat:         s.goroutinesPerConn == 0,
	}
	for p, name := range []string{"steady", "saturate-2x"} {
		load := float64(p + 1)
		run.Phases = append(run.Phases, samplePhase(name, load, s, frameRate*load))
	}
	for t := range 20 {
		ramp := math.Min(float64(t)/10, 1)
		c := int(ramp * float64(conns-failed))
		fps := 0.0
		if t >= 10 {
			fps = frameRate * (1 + 0.05*math.Sin(float64(t)))
		}
		run.Series = append(run.Series, Sample{
			T:            float64(t),
			Conns:        c,
			RSSBytes:     uint64(nodes*idleRSS + s.rssPerConn*float64(c)),
			HeapBytes:    uint64(nodes*idleHeap + s.heapPerConn*float64(c)),
			Goroutines:   nodes*idleGor + s.goroutinesPerConn*c,
			FramesPerSec: fps,
			RelayCPU:     0.2 + fps*s.cpuPerFrame,
			WorkerCPU:    0.5 + 2.5*ramp + fps/1e6,
			SockMemBytes: uint64(12<<20 + c*4_600),
		})
	}
	if s.target == "relay" {
		run.Broker = &BrokerResult{Queues: 2, Bindings: 100, Consumers: 2, Channels: 4, PublishesPerSec: 1_900, DeliveriesPerSec: 1_900}
	} else {
		run.Broker = &BrokerResult{Queues: 2000, Bindings: 2000, Consumers: 2000, Channels: 2000, PublishesPerSec: 96_000, DeliveriesPerSec: 96_000}
	}
	return run
}

func samplePhase(name string, load float64, s sampleShape, fps float64) PhaseResult {
	const dur = 60.0
	sent := uint64(1_000 * load * dur)
	p := PhaseResult{
		Name: name, DurationS: dur, Senders: int(1_000 * load), CursorHz: 20, ActionHz: 1,
		Latency:    map[string]Percentiles{},
		Histograms: map[string][]Bucket{},

		ActionsSent:      sent,
		ActionsExpected:  sent * 49,
		ActionsReceived:  sent*49 - uint64(load-1)*12,
		ActionDuplicates: 0,
		ActionGaps:       uint64(load-1) * 12,
		CursorsSent:      uint64(20_000 * load * dur),
		CursorsReceived:  uint64(20_000 * load * dur * 49),

		FramesDelivered:        uint64(fps * dur),
		FramesPerSec:           fps,
		RelayCPUSeconds:        fps * dur * s.cpuPerFrame,
		FramesPerRelayCPUSec:   1 / s.cpuPerFrame,
		RelayCPUSecPerFrame:    s.cpuPerFrame,
		WorkerCPUSeconds:       dur * 3 * load,
		MissedSlots:            uint64(load-1) * 40,
		BrokerPublishesPerSec:  950 * load,
		BrokerDeliveriesPerSec: 950 * load,
		BrokerPublishesBound:   1_000 * load,
		ClientSendsPerSec:      21_000 * load,
	}
	kinds := map[string]float64{"cursor_same": 1, "cursor_cross": 1.6, "action_same": 1.1, "action_cross": 1.8, "receive_lag": 0.4}
	for k, f := range kinds {
		med := s.latencyMS * f * load
		var total int64
		var hist []Bucket
		for _, upTo := range []float64{0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 60000} {
			// log-normal shape around the median, sampled at the bar's top
			z := (math.Log(upTo) - math.Log(med)) / 0.9
			n := int64(1e5 * math.Exp(-z*z/2))
			total += n
			hist = append(hist, Bucket{UpToMS: upTo, Count: n})
		}
		p.Histograms[k] = hist
		p.Latency[k] = Percentiles{
			Count: total, P50: med, P90: med * 2.2, P99: med * 4.3, P999: med * 7.1, Max: med * 19,
		}
	}
	return p
}

// minimalReport is what a run that measured almost nothing writes: one
// run, no phases, no series, nil slices and maps left as Go leaves them.
func minimalReport() *Report {
	return &Report{
		Schema: SchemaID,
		Preset: "smoke",
		Runs:   []Run{{Target: "relay", Label: "relay", Nodes: []NodeResult{{ID: "relay-a"}}}},
	}
}

func ExampleValidateReport() {
	r := sampleReport()
	r.Runs[0].Totals.ConnsHeld = -1
	r.Runs[1].Target = "nginx"
	b, _ := json.Marshal(r)
	fmt.Println(ValidateReport(b))
	// Output:
	// bench: report does not match schema: /runs/0/totals/conns_held: minimum: got -1, want 0; /runs/1/target: value must be one of 'relay', 'baseline'
}
