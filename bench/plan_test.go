package bench

import "testing"

func TestSendersSpreadOverEventsAndWorkers(t *testing.T) {
	cfg, err := Config{Preset: "many-events", Conns: 20_000, Senders: 100}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	p := makePlan(cfg, []string{"n1", "n2"}, 4)
	seen := map[string]bool{}
	perWorker := make([]int, len(p.workers))
	for w, conns := range p.workers {
		for _, c := range conns {
			if c.SenderRank >= 0 && c.SenderRank < 100 {
				if seen[c.Event] {
					t.Fatalf("two of the first 100 senders in event %s", c.Event)
				}
				seen[c.Event] = true
				perWorker[w]++
			}
		}
	}
	if len(seen) != 100 {
		t.Fatalf("%d senders placed, want 100", len(seen))
	}
	for w, n := range perWorker {
		if n < 10 {
			t.Fatalf("worker %d holds %d of 100 senders (%v): senders are bunched", w, n, perWorker)
		}
	}
}

func TestEveryRankIsPlacedOnce(t *testing.T) {
	cfg, _ := Config{Preset: "saturate", Conns: 2_000}.withDefaults()
	p := makePlan(cfg, []string{"n1"}, 1)
	ranks := map[int]bool{}
	for _, c := range p.conns {
		if c.SenderRank >= 0 {
			if ranks[c.SenderRank] {
				t.Fatalf("rank %d placed twice", c.SenderRank)
			}
			ranks[c.SenderRank] = true
		}
	}
	// 40 events of 50 hold every rank up to the largest step (1,600).
	for r := range 1600 {
		if !ranks[r] {
			t.Fatalf("rank %d not placed", r)
		}
	}
}
