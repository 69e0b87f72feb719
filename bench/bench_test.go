package bench

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestQuickBench is a small real run: two relay nodes bridged by the
// broker, a few thousand connections from two load-worker processes. It
// asserts only what does not depend on timing: every connection held,
// every action delivered once to every other member, goroutines flat, and
// a report that matches its schema. Figures are the bench's job, not this
// test's.
func TestQuickBench(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes; skipped with -short")
	}
	amqpURL := os.Getenv("RELAY_AMQP_URL")
	if amqpURL == "" {
		amqpURL = "amqp://guest:guest@127.0.0.1:5672/"
	}
	if err := brokerAnswers(amqpURL); err != nil {
		t.Fatalf("no RabbitMQ at %s: %v; run `make broker`", amqpURL, err)
	}
	bin := filepath.Join(t.TempDir(), "relay")
	build := exec.Command("go", "build", "-o", bin, "../cmd/relay")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build relay: %v", err)
	}
	out := filepath.Join(t.TempDir(), "report")
	_, file, _, _ := runtime.Caller(0)
	cfg := Config{
		Preset:     "quick",
		Nodes:      2,
		Workers:    2,
		AMQPURL:    amqpURL,
		RelayBin:   bin,
		Out:        out,
		TuneScript: filepath.Join(filepath.Dir(file), "..", "deploy", "tune.sh"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var log io.Writer = io.Discard
	if testing.Verbose() {
		log = os.Stderr
	}
	rep, err := Execute(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}

	js, err := os.ReadFile(out + ".json")
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateReport(js); err != nil {
		t.Fatalf("written report: %v", err)
	}
	if _, err := os.Stat(out + ".html"); err != nil {
		t.Fatalf("no HTML report: %v", err)
	}

	run := rep.Runs[0]
	tot := run.Totals
	if tot.ConnsHeld != tot.ConnsTarget || tot.ConnsFailed != 0 {
		t.Errorf("held %d of %d connections; failed %v; dropped %v", tot.ConnsHeld, tot.ConnsTarget, tot.FailedByCause, tot.DroppedByCause)
	}
	if !tot.GoroutinesFlat {
		for _, n := range run.Nodes {
			t.Logf("node %s: goroutines %d, idle %d, %d conns", n.ID, n.Goroutines, n.IdleGoroutines, n.PeakConns)
		}
		t.Error("node goroutines grew with connections")
	}
	if len(run.Phases) == 0 {
		t.Fatal("no measured phase")
	}
	for _, p := range run.Phases {
		if p.ActionsSent == 0 || p.ActionsExpected == 0 {
			t.Errorf("phase %s: no actions sent (%d) or expected (%d)", p.Name, p.ActionsSent, p.ActionsExpected)
		}
		if p.ActionsReceived != p.ActionsExpected || p.ActionDuplicates != 0 || p.ActionGaps != 0 {
			t.Errorf("phase %s: actions received %d of %d expected, %d duplicates, %d gaps",
				p.Name, p.ActionsReceived, p.ActionsExpected, p.ActionDuplicates, p.ActionGaps)
		}
		if p.Latency["action_cross"].Count == 0 || p.Latency["action_same"].Count == 0 {
			t.Errorf("phase %s: actions crossed no node boundary (same %d, cross %d): the nodes are not bridged",
				p.Name, p.Latency["action_same"].Count, p.Latency["action_cross"].Count)
		}
	}
}
