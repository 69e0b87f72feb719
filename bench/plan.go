package bench

import (
	"fmt"
	"math/rand/v2"

	"github.com/relay-dev/relay/bench/loadgen"
)

// plan says who every connection is: its event, its node, whether it sends,
// and which worker opens it. It is deterministic for a given Config.
type plan struct {
	events  []int // member count per event
	conns   []loadgen.Conn
	workers [][]loadgen.Conn
	// senderEvents is how many events have a sender in the first phase.
	senderEvents int
}

// eventSizes lays out c.Conns members: c.Lounges large events first, the
// rest in mixers of c.EventSize, or of sizes drawn from MixerMin..MixerMax.
func eventSizes(c Config) []int {
	left := c.Conns
	var sizes []int
	for range c.Lounges {
		n := min(c.LoungeSize, left)
		if n <= 0 {
			break
		}
		sizes = append(sizes, n)
		left -= n
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for left > 0 {
		n := c.EventSize
		if c.MixerMin > 0 {
			n = c.MixerMin + rng.IntN(c.MixerMax-c.MixerMin+1)
		}
		n = min(n, left)
		sizes = append(sizes, n)
		left -= n
	}
	return sizes
}

// makePlan spreads members over nodes so that every event with at least
// as many members as there are nodes has members on each of them (as a
// load balancer would), ranks senders one per event, and cuts the
// connections into per-worker lists.
func makePlan(c Config, addrs []string, workers int) plan {
	p := plan{events: eventSizes(c)}
	maxSenders := c.Senders
	for _, s := range c.Steps {
		maxSenders = max(maxSenders, s)
	}
	// Rank r sends from event (r*stride) mod events, member r / events: one
	// sender per event until every event has one. The stride is a prime
	// that does not divide the event count, so ranks below any step's
	// sender count land on events all over the layout, and so on every
	// load worker, not on the first worker's events alone.
	stride := spreadStride(len(p.events))
	senderRank := make(map[[2]int]int)
	for r := 0; r < maxSenders; r++ {
		e, m := (r*stride)%len(p.events), r/len(p.events)
		if m >= p.events[e] {
			continue
		}
		senderRank[[2]int{e, m}] = r
	}
	for e, size := range p.events {
		for m := range size {
			rank, ok := senderRank[[2]int{e, m}]
			if !ok {
				rank = -1
			}
			p.conns = append(p.conns, loadgen.Conn{
				Addr:       addrs[(e+m)%len(addrs)],
				Event:      fmt.Sprintf("bench-%d", e),
				User:       fmt.Sprintf("u%d-%d", e, m),
				SenderRank: rank,
				EventSize:  size,
			})
		}
	}
	p.senderEvents = min(c.Senders, len(p.events))
	per := (len(p.conns) + workers - 1) / workers
	for w := range workers {
		from, to := w*per, min((w+1)*per, len(p.conns))
		if from >= to {
			break
		}
		p.workers = append(p.workers, p.conns[from:to])
	}
	return p
}

// spreadStride is a prime that does not divide n (so that r*stride mod n
// visits every residue), or 1.
func spreadStride(n int) int {
	for _, p := range []int{7919, 7907, 7901, 7883} {
		if n%p != 0 {
			return p
		}
	}
	return 1
}

// sourceAddrs are the loopback addresses worker w dials from: 16 of its
// own, so that each has its own ephemeral port range.
func sourceAddrs(w int) []string {
	var out []string
	for i := 1; i <= 16; i++ {
		out = append(out, fmt.Sprintf("127.%d.%d.%d", 1+w/250, w%250, i))
	}
	return out
}
