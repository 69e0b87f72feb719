package loadgen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

// stream is a run of server frames of every kind the reader meets, and the
// frames it must yield.
func stream(big bool) ([]byte, []frame) {
	mid := bytes.Repeat([]byte("m"), 300) // 16-bit length
	frames := []frame{
		{opBinary, true, []byte("hello")},
		{opBinary, true, []byte{}},
		{opPing, true, []byte("are you there")},
		{opBinary, true, mid},
		{opBinary, false, []byte("frag")},
		{opCont, true, []byte("ment")},
		{opBinary, true, []byte("masked by a server that should not")},
		{opClose, true, []byte{0x03, 0xe9, 'b', 'y', 'e'}},
	}
	if big {
		frames = append(frames, frame{opBinary, true, bytes.Repeat([]byte("b"), 70_000)}) // 64-bit length
	}
	var b []byte
	for i, f := range frames {
		var mask []byte
		if i == 6 {
			mask = []byte{1, 2, 3, 4}
		}
		b = append(b, serverFrame(f.op, f.fin, f.payload, mask)...)
	}
	return b, frames
}

func TestFrameReaderSplitAtEveryByte(t *testing.T) {
	all, want := stream(false)
	for k := 0; k <= len(all); k++ {
		in := bytes.Clone(all) // masked payloads are unmasked in place
		var r frameReader
		var rec recorder
		if err := r.feed(in[:k], &rec); err != nil {
			t.Fatalf("split %d: %v", k, err)
		}
		if err := r.feed(in[k:], &rec); err != nil {
			t.Fatalf("split %d: %v", k, err)
		}
		if !reflect.DeepEqual(rec.frames, want) {
			t.Fatalf("split %d: got %d frames %+v", k, len(rec.frames), rec.frames)
		}
		if r.partial != nil {
			t.Fatalf("split %d: buffer kept after the last frame", k)
		}
	}
}

func TestFrameReaderOneByteAtATime(t *testing.T) {
	all, want := stream(true)
	var r frameReader
	var rec recorder
	for i := range all {
		if err := r.feed(all[i:i+1], &rec); err != nil {
			t.Fatalf("byte %d: %v", i, err)
		}
	}
	if !reflect.DeepEqual(rec.frames, want) {
		t.Fatalf("got %d frames, want %d", len(rec.frames), len(want))
	}
	if r.partial != nil {
		t.Fatal("buffer kept after the last frame")
	}
}

func TestFrameReaderLargeFrameSplits(t *testing.T) {
	all, want := stream(true)
	last := len(all) - 70_010 // start of the 64-bit frame
	for _, k := range []int{last, last + 1, last + 2, last + 5, last + 9, last + 10, last + 11, last + 40_000, len(all) - 1} {
		var r frameReader
		var rec recorder
		in := bytes.Clone(all)
		if err := r.feed(in[:k], &rec); err != nil {
			t.Fatal(err)
		}
		if err := r.feed(in[k:], &rec); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(rec.frames, want) {
			t.Fatalf("split %d: got %d frames", k, len(rec.frames))
		}
	}
}

// stopper stops after its first frame, as a connection does on close.
type stopper struct{ n int }

func (s *stopper) onFrame(frame) bool { s.n++; return false }

func TestFrameReaderStops(t *testing.T) {
	b := append(binFrame([]byte("a")), binFrame([]byte("b"))...)
	var r frameReader
	var s stopper
	if err := r.feed(b, &s); err != nil || s.n != 1 {
		t.Fatalf("n=%d err=%v", s.n, err)
	}
	// Also when the first frame came in pieces.
	s.n = 0
	r = frameReader{}
	_ = r.feed(b[:1], &s)
	if err := r.feed(b[1:], &s); err != nil || s.n != 1 || r.partial != nil {
		t.Fatalf("n=%d err=%v partial=%v", s.n, err, r.partial != nil)
	}
}

func TestFrameReaderRefusesBrokenStreams(t *testing.T) {
	huge := []byte{0x82, 127}
	huge = binary.BigEndian.AppendUint64(huge, 1<<40)
	for name, b := range map[string][]byte{
		"rsv bits":     {0xc2, 0},
		"huge length":  huge,
		"max uint64":   append([]byte{0x82, 127}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
		"over the cap": binary.BigEndian.AppendUint64([]byte{0x82, 127}, maxFramePayload+1),
	} {
		for k := 0; k <= len(b); k++ {
			var r frameReader
			var rec recorder
			err := r.feed(b[:k], &rec)
			if err == nil {
				err = r.feed(b[k:], &rec)
			}
			if !errors.Is(err, errFrame) {
				t.Fatalf("%s split %d: err %v, want errFrame", name, k, err)
			}
			if r.partial != nil {
				t.Fatalf("%s: buffer kept after an error", name)
			}
		}
	}
}

func TestClientFrame(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 0xffff, 0x10000} {
		payload := bytes.Repeat([]byte{0xab}, n)
		buf := append(make([]byte, clientHeadroom), payload...)
		b := clientFrame(buf, opBinary)
		if b[0] != 0x80|opBinary || b[1]&0x80 == 0 {
			t.Fatalf("n=%d: header % x: want FIN, binary, masked", n, b[:2])
		}
		f, total, err := nextFrame(bytes.Clone(b))
		if err != nil || total != len(b) || !bytes.Equal(f.payload, payload) {
			t.Fatalf("n=%d: total %d of %d, err %v, payload equal %v", n, total, len(b), err, bytes.Equal(f.payload, payload))
		}
	}
}

func TestControlFrames(t *testing.T) {
	var buf [clientHeadroom + 125]byte
	f, _, _ := nextFrame(bytes.Clone(closeFrame(&buf, 1000)))
	if f.op != opClose || closeCode(f.payload) != 1000 {
		t.Fatalf("close frame: op %x code %d", f.op, closeCode(f.payload))
	}
	long := bytes.Repeat([]byte("p"), 300)
	f, _, _ = nextFrame(bytes.Clone(controlFrame(&buf, opPong, long)))
	if f.op != opPong || len(f.payload) != 125 {
		t.Fatalf("pong: op %x, %d bytes", f.op, len(f.payload))
	}
	if closeCode(nil) != 1005 {
		t.Fatal("a close frame without a code is 1005")
	}
}
