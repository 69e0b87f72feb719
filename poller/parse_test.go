package poller

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// fakeSocket records what the connection writes and whether it closed.
type fakeSocket struct {
	net.Conn
	out    bytes.Buffer
	closed bool
}

func (f *fakeSocket) Write(b []byte) (int, error) { return f.out.Write(b) }
func (f *fakeSocket) Close() error                { f.closed = true; return nil }

// frameLog records the frames handed to the handler.
type frameLog struct {
	frames []string // "b:" or "t:" + payload, "+" when not fin
	closes int
}

func (l *frameLog) OnFrame(_ *Conn, binary, fin bool, data []byte) {
	s := "t:"
	if binary {
		s = "b:"
	}
	s += string(data)
	if !fin {
		s += "+"
	}
	l.frames = append(l.frames, s)
}

func (l *frameLog) OnClose(*Conn, error) { l.closes++ }

func newTestConn() (*Conn, *fakeSocket, *frameLog) {
	sock, log := &fakeSocket{}, &frameLog{}
	c := &Conn{nb: sock, maxFrame: 64, maxPending: 1 << 20, grace: time.Second, handler: log,
		after: func(time.Duration, func()) {}, ready: true}
	return c, sock, log
}

// clientFrame builds a masked client frame.
func clientFrame(first byte, payload []byte) []byte {
	f := []byte{first}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	key := []byte{0x11, 0x22, 0x33, 0x44}
	f = append(f, key...)
	for i, b := range payload {
		f = append(f, b^key[i%4])
	}
	return f
}

// closeCode is the code of the close frame the connection wrote, or 0.
func closeCode(out []byte) int {
	for len(out) >= 2 {
		n := int(out[1] & 0x7f)
		if out[0]&0x0f == opClose && n >= 2 && len(out) >= 4 {
			return int(binary.BigEndian.Uint16(out[2:4]))
		}
		if len(out) < 2+n {
			break
		}
		out = out[2+n:]
	}
	return 0
}

func TestParseFrames(t *testing.T) {
	cases := []struct {
		name   string
		input  []byte
		frames []string
		close  int
	}{
		{"binary", clientFrame(0x82, []byte("hello")), []string{"b:hello"}, 0},
		{"text reaches the handler as text", clientFrame(0x81, []byte("hi")), []string{"t:hi"}, 0},
		{"invalid UTF-8 text is still just text", clientFrame(0x81, []byte{0xff, 0xfe}), []string{"t:\xff\xfe"}, 0},
		{"empty binary frame is delivered", clientFrame(0x82, nil), []string{"b:"}, 0},
		{"fragments then empty final", cat(clientFrame(0x02, []byte("ab")), clientFrame(0x80, nil)), []string{"b:ab+", "b:"}, 0},
		{"text after binary is text", cat(clientFrame(0x82, []byte("x")), clientFrame(0x81, []byte("y"))), []string{"b:x", "t:y"}, 0},
		{"ping between fragments", cat(clientFrame(0x02, []byte("a")), clientFrame(0x89, []byte("p")), clientFrame(0x80, []byte("b"))), []string{"b:a+", "b:b"}, 0},
		{"unmasked frame", []byte{0x82, 0x01, 'x'}, nil, closeProtocolError},
		{"reserved bit", clientFrame(0xc2, []byte("x")), nil, closeProtocolError},
		{"continuation without start", clientFrame(0x80, []byte("x")), nil, closeProtocolError},
		{"new message inside a fragmented one", cat(clientFrame(0x02, []byte("a")), clientFrame(0x82, []byte("b"))), []string{"b:a+"}, closeProtocolError},
		{"unknown opcode", clientFrame(0x83, []byte("x")), nil, closeProtocolError},
		{"fragmented ping", clientFrame(0x09, nil), nil, closeProtocolError},
		{"long ping", clientFrame(0x89, make([]byte, 126)), nil, closeProtocolError},
		{"frame over the limit", clientFrame(0x82, make([]byte, 65)), nil, closeTooBig},
		{"claims 2^63 bytes", []byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, nil, closeTooBig},
		{"data after a fault is dropped", cat(clientFrame(0xc2, nil), clientFrame(0x82, []byte("x"))), nil, closeProtocolError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, sock, log := newTestConn()
			if err := c.Parse(append([]byte(nil), tc.input...)); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := closeCode(sock.out.Bytes()); got != tc.close {
				t.Fatalf("close code %d, want %d (wrote %x)", got, tc.close, sock.out.Bytes())
			}
			if !equal(log.frames, tc.frames) {
				t.Fatalf("frames %q, want %q", log.frames, tc.frames)
			}
		})
	}
}

func TestParseSplitAtEveryByte(t *testing.T) {
	input := cat(clientFrame(0x82, []byte("first")), clientFrame(0x02, bytes.Repeat([]byte("x"), 40)),
		clientFrame(0x89, []byte("ping")), clientFrame(0x80, []byte("end")), clientFrame(0x82, make([]byte, 60)))
	c, _, whole := newTestConn()
	_ = c.Parse(append([]byte(nil), input...))
	for cut := 1; cut < len(input); cut++ {
		c, sock, log := newTestConn()
		_ = c.Parse(append([]byte(nil), input[:cut]...))
		_ = c.Parse(append([]byte(nil), input[cut:]...))
		if !equal(log.frames, whole.frames) || closeCode(sock.out.Bytes()) != 0 {
			t.Fatalf("split at %d: frames %q, want %q", cut, log.frames, whole.frames)
		}
	}
}

func TestPingIsAnsweredWithItsPayload(t *testing.T) {
	c, sock, _ := newTestConn()
	_ = c.Parse(clientFrame(0x89, []byte("abc")))
	if want := []byte{0x8a, 3, 'a', 'b', 'c'}; !bytes.Equal(sock.out.Bytes(), want) {
		t.Fatalf("wrote %x, want pong %x", sock.out.Bytes(), want)
	}
}

func TestPeerCloseIsEchoedAndEndsTheConnection(t *testing.T) {
	c, sock, _ := newTestConn()
	payload := binary.BigEndian.AppendUint16(nil, 1000)
	_ = c.Parse(clientFrame(0x88, payload))
	if closeCode(sock.out.Bytes()) != 1000 || !sock.closed {
		t.Fatalf("wrote %x closed=%v, want an echoed 1000 and the socket closed", sock.out.Bytes(), sock.closed)
	}
}

func TestCloseWithSendsOneCloseFrameAndIgnoresLaterData(t *testing.T) {
	c, sock, log := newTestConn()
	c.CloseWith(1008, "rate limit")
	c.CloseWith(1011, "second close is a no-op")
	_ = c.Parse(clientFrame(0x82, []byte("late")))
	if n := bytes.Count(sock.out.Bytes(), []byte{finBit | opClose}); n != 1 || closeCode(sock.out.Bytes()) != 1008 {
		t.Fatalf("wrote %x, want exactly one close frame with 1008", sock.out.Bytes())
	}
	if len(log.frames) != 0 {
		t.Fatalf("data after our close reached the handler: %q", log.frames)
	}
}

func TestFramesBeforeStartWaitForIt(t *testing.T) {
	c, _, log := newTestConn()
	c.ready = false
	_ = c.Parse(clientFrame(0x82, []byte("early")))
	if len(log.frames) != 0 {
		t.Fatalf("a frame reached the handler before Start: %q", log.frames)
	}
	c.Start()
	_ = c.Parse(clientFrame(0x82, []byte("later")))
	if !equal(log.frames, []string{"b:early", "b:later"}) {
		t.Fatalf("frames %q, want early then later", log.frames)
	}
}

func TestCloseBeforeStartReachesTheHandlerAfterIt(t *testing.T) {
	c, _, log := newTestConn()
	c.ready = false
	c.CloseAndClean(nil)
	if log.closes != 0 {
		t.Fatal("OnClose ran before Start")
	}
	c.Start()
	c.CloseAndClean(nil)
	if log.closes != 1 {
		t.Fatalf("OnClose ran %d times, want once", log.closes)
	}
}

func TestInvalidPeerCloseIsAnsweredWithAReason(t *testing.T) {
	for _, tc := range []struct {
		payload []byte
		code    int
	}{
		{[]byte{0x03}, closeProtocolError},
		{binary.BigEndian.AppendUint16(nil, 999), closeProtocolError},
		{binary.BigEndian.AppendUint16(nil, 1005), closeProtocolError},
		{append(binary.BigEndian.AppendUint16(nil, 1000), 0xff), closeInvalidPayload},
	} {
		c, sock, _ := newTestConn()
		_ = c.Parse(clientFrame(0x88, tc.payload))
		out := sock.out.Bytes()
		if closeCode(out) != tc.code || len(out) <= 4 {
			t.Errorf("close %x answered with %x, want code %d and a reason", tc.payload, out, tc.code)
		}
	}
}

func TestPingFloodIsClosedAsSlowConsumer(t *testing.T) {
	c, sock, _ := newTestConn()
	c.maxPending = 100
	c.pending.Store(101)
	_ = c.Parse(clientFrame(0x89, []byte("p")))
	if got := closeCode(sock.out.Bytes()); got != closeTryAgainLater {
		t.Fatalf("close code %d, want %d", got, closeTryAgainLater)
	}
}

func TestCloseReasonIsCutToFit(t *testing.T) {
	f := closeFrame(1007, string(bytes.Repeat([]byte("r"), 300)))
	if len(f) != 2+125 || f[1] != 125 {
		t.Fatalf("close frame of %d bytes, payload %d; want a 125-byte payload", len(f), f[1])
	}
}

func FuzzParse(f *testing.F) {
	f.Add(clientFrame(0x82, []byte("hello")), 3)
	f.Add(cat(clientFrame(0x02, []byte("ab")), clientFrame(0x80, nil)), 1)
	f.Add([]byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 5)
	f.Add(clientFrame(0x88, []byte{0x03, 0xe8, 'b', 'y', 'e'}), 2)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		c, _, log := newTestConn()
		if cut < 0 {
			cut = -cut
		}
		cut %= len(data) + 1
		_ = c.Parse(append([]byte(nil), data[:cut]...))
		_ = c.Parse(append([]byte(nil), data[cut:]...))
		// An incomplete frame is at most a header (14 bytes) and the
		// largest payload allowed: a data frame or a control frame.
		if limit := max(c.maxFrame, maxControl) + 14; len(c.partial) > limit {
			t.Fatalf("kept %d bytes of an incomplete frame; the cap is %d", len(c.partial), limit)
		}
		for _, fr := range log.frames {
			if len(fr) > c.maxFrame+3 {
				t.Fatalf("handed a frame of %d bytes over the %d limit", len(fr), c.maxFrame)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	c, _, _ := newTestConn()
	c.maxFrame = 4096
	c.handler = discard{}
	frame := clientFrame(0x82, bytes.Repeat([]byte("m"), 40))
	buf := bytes.Repeat(frame, 100)
	work := make([]byte, len(buf))
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for range b.N {
		copy(work, buf)
		_ = c.Parse(work)
	}
}

type discard struct{}

func (discard) OnFrame(*Conn, bool, bool, []byte) {}
func (discard) OnClose(*Conn, error)              {}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
