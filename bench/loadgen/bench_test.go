package loadgen

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/relay-dev/relay/codec"
)

// BenchmarkReceive is the receive path for one batch frame on one
// connection in a phase: frame parsing, the batch walk, latency histograms
// and, with actions, the exactly-once accounting. Actions carry a fresh seq
// each iteration, as they would on the wire.
func BenchmarkReceive(b *testing.B) {
	for _, size := range []struct{ cursors, actions int }{{50, 0}, {50, 10}, {500, 50}} {
		b.Run(fmt.Sprintf("cursors=%d/actions=%d", size.cursors, size.actions), func(b *testing.B) {
			now := time.Now().UnixNano()
			batch := &codec.Batch{Node: "n1", Seq: 1, TS: now / 1e6}
			for i := range size.cursors {
				batch.Cursors = append(batch.Cursors, codec.Cursor{User: fmt.Sprintf("user-%06d", i), X: float64(now-2e6) / 1e6, Y: float64(i)})
			}
			for i := range size.actions {
				batch.Actions = append(batch.Actions, codec.Action{User: fmt.Sprintf("user-%06d", i), Data: stamp(now-2e6, 1, 1)})
			}
			frame := batchFrame(batch)
			// Where each action's seq sits, to renumber it per iteration.
			var seqAt []int
			for off := 0; ; {
				k := bytes.Index(frame[off:], stamp(now-2e6, 1, 1))
				if k < 0 {
					break
				}
				seqAt = append(seqAt, off+k+11)
				off += k + 1
			}
			sh, c, _ := testConn(b, "me", "n1")
			sh.begin(1)
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				for _, at := range seqAt {
					binary.BigEndian.PutUint64(frame[at:], 1<<32|uint64(i+1))
				}
				sh.mu.Lock()
				sh.receive(c, frame, now)
				sh.mu.Unlock()
			}
			b.StopTimer()
			if got, want := sh.ph.cursorsReceived, uint64(b.N*size.cursors); got != want {
				b.Fatalf("cursors received %d, want %d", got, want)
			}
			if sh.ph.actionsReceived != uint64(b.N*size.actions) || sh.ph.gaps+sh.ph.duplicates != 0 {
				b.Fatalf("actions received %d gaps %d duplicates %d", sh.ph.actionsReceived, sh.ph.gaps, sh.ph.duplicates)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(size.cursors+size.actions)), "ns/entry")
		})
	}
}
