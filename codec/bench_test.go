package codec

import (
	"bytes"
	"fmt"
	"testing"
)

func BenchmarkDecode(b *testing.B) {
	kib := bytes.Repeat([]byte{'a'}, 1024-3)
	frames := []struct {
		name  string
		frame []byte
		ok    bool
	}{
		{"cursor", AppendCursor(nil, 512.25, 384.5), true},
		{"action-small", AppendAction(nil, mp(b, map[string]any{"op": "tap", "id": 7})), true},
		{"action-1KiB", AppendAction(nil, cat([]byte{0xda, 0x03, 0xfd}, kib)), true},
		{"action-nested-32", AppendAction(nil, nestArrays(MaxDepth)), true},
		{"64-keys", manyKeys(b, MaxKeys), true},
		{"64-long-keys-alike", longKeys(b), true},
		{"hostile-huge-length", x(b, "df ffffffff 00"), false},
		{"hostile-too-deep", act(nestArrays(MaxDepth + 1)), false},
	}
	for _, f := range frames {
		b.Run(f.name, func(b *testing.B) {
			var m Message
			if err := Decode(f.frame, &m); (err == nil) != f.ok {
				b.Fatalf("Decode: %v", err)
			}
			b.SetBytes(int64(len(f.frame)))
			b.ReportAllocs()
			for b.Loop() {
				_ = Decode(f.frame, &m)
			}
		})
	}
}

func BenchmarkAppendBatch(b *testing.B) {
	for _, n := range []int{1, 50, 500} {
		b.Run(fmt.Sprintf("cursors-%d", n), func(b *testing.B) {
			batch := benchBatch(n, n/10+1)
			var e Encoder
			buf := e.AppendBatch(nil, batch)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf = e.AppendBatch(buf[:0], batch)
			}
			b.ReportMetric(float64(len(buf)), "B/frame")
		})
	}
}

func BenchmarkAppendCursor(b *testing.B) {
	buf := AppendCursor(nil, 1, 2)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendCursor(buf[:0], 512.25, 384.5)
	}
}

// longKeys is the worst case for duplicate detection within a 4 KiB frame:
// MaxKeys keys of 50 bytes that differ only at the end.
func longKeys(b *testing.B) []byte {
	kv := []any{"t", "act", "d", 1}
	for i := range MaxKeys - 2 {
		kv = append(kv, fmt.Sprintf("%s%02d", bytes.Repeat([]byte{'k'}, 48), i), 0)
	}
	frame := obj(b, kv...)
	if len(frame) > 4096 {
		b.Fatalf("frame of %d bytes", len(frame))
	}
	return frame
}
