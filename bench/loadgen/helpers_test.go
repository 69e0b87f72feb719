package loadgen

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/relay-dev/relay/codec"
)

// serverFrame builds one frame as a server would send it; mask, if not nil,
// is a 4-byte key (servers do not mask, but the reader tolerates it).
func serverFrame(op byte, fin bool, payload []byte, mask []byte) []byte {
	var b []byte
	first := op
	if fin {
		first |= 0x80
	}
	b = append(b, first)
	var maskBit byte
	if mask != nil {
		maskBit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, maskBit|byte(n))
	case n <= 0xffff:
		b = append(b, maskBit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, maskBit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if mask == nil {
		return append(b, payload...)
	}
	b = append(b, mask...)
	for i, c := range payload {
		b = append(b, c^mask[i&3])
	}
	return b
}

func binFrame(payload []byte) []byte { return serverFrame(opBinary, true, payload, nil) }

// recorder is a frameHandler that keeps copies of the frames it gets.
type recorder struct{ frames []frame }

func (r *recorder) onFrame(f frame) bool {
	f.payload = bytes.Clone(f.payload)
	if f.payload == nil {
		f.payload = []byte{}
	}
	r.frames = append(r.frames, f)
	return true
}

// fakeSocket records what a connection writes.
type fakeSocket struct {
	mu     sync.Mutex
	writes [][]byte
	closed bool
}

func (s *fakeSocket) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes = append(s.writes, bytes.Clone(b))
	return len(b), nil
}

func (s *fakeSocket) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// written parses what the connection wrote as client frames.
func (s *fakeSocket) written(t *testing.T) []frame {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []frame
	for _, w := range s.writes {
		if w[1]&0x80 == 0 {
			t.Fatalf("client frame % x is not masked", w)
		}
		f, n, err := nextFrame(w)
		if err != nil || n != len(w) {
			t.Fatalf("client frame % x: n=%d err=%v", w, n, err)
		}
		out = append(out, f)
	}
	return out
}

// testConn is a live, welcomed connection of user on a fresh shard.
func testConn(t testing.TB, user, node string) (*shard, *conn, *fakeSocket) {
	t.Helper()
	sh := newShard(new(tally))
	sock := new(fakeSocket)
	c := &conn{sock: sock, sh: sh, user: user, live: true}
	var enc codec.Encoder
	sh.receive(c, binFrame(enc.AppendWelcome(nil, user, "ev", node, []string{user})), 1)
	if !c.welcomed || c.node != node {
		t.Fatalf("welcome not taken: welcomed=%v node=%q", c.welcomed, c.node)
	}
	return sh, c, sock
}

// mp encodes v with the msgpack library.
func mp(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stamp is an action value as a sender builds it.
func stamp(sentNS int64, tag uint32, n uint64) []byte {
	return appendStamp(nil, sentNS, uint64(tag)<<32|n)
}

// batchFrame encodes b as a server batch frame.
func batchFrame(b *codec.Batch) []byte {
	var enc codec.Encoder
	return binFrame(enc.AppendBatch(nil, b))
}
