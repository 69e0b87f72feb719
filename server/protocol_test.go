package server_test

// Tests of the contract in PROTOCOL.md: every close code of sections 2 and
// 3, the HTTP refusals before the upgrade and their order, and token mode.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/relay-dev/relay/codec"
	"github.com/relay-dev/relay/server"
)

// --- raw MessagePack, for frames no encoder would produce ---

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// fstr is a fixstr.
func fstr(s string) []byte { return append([]byte{0xa0 | byte(len(s))}, s...) }

// rawMap is a fixmap of len(kv)/2 pairs, each key and value already encoded.
func rawMap(kv ...[]byte) []byte { return cat(append([][]byte{{0x80 | byte(len(kv)/2)}}, kv...)...) }

func rawCur(x, y []byte) []byte { return rawMap(fstr("t"), fstr("cur"), fstr("x"), x, fstr("y"), y) }

func rawAct(d []byte) []byte { return rawMap(fstr("t"), fstr("act"), fstr("d"), d) }

func f64(bits uint64) []byte { return binary.BigEndian.AppendUint64([]byte{0xcb}, bits) }

func f32(bits uint32) []byte { return binary.BigEndian.AppendUint32([]byte{0xca}, bits) }

// nested is n arrays, each holding the next, around a 1: n deep.
func nested(n int) []byte { return cat(bytes.Repeat([]byte{0x91}, n), []byte{0x01}) }

// blob is a bin16 value of size bytes that starts with seq, found again in
// batches by blobSeqs. The padding is 'x', which never looks like a header.
func blob(seq uint32, size int) []byte {
	b := []byte{0xc5, byte(size >> 8), byte(size)}
	b = binary.BigEndian.AppendUint32(b, seq)
	return append(b, bytes.Repeat([]byte{'x'}, size-4)...)
}

// blobSeqs lists the seqs of the blobs of the given size in a server frame.
func blobSeqs(frame []byte, size int) []uint32 {
	head := []byte{0xc5, byte(size >> 8), byte(size)}
	var seqs []uint32
	for {
		i := bytes.Index(frame, head)
		if i < 0 || len(frame) < i+3+4 {
			return seqs
		}
		seqs = append(seqs, binary.BigEndian.Uint32(frame[i+3:]))
		frame = frame[i+3+size:]
	}
}

// --- connection helpers that need no *testing.T (for goroutines) ---

// pump reads conn until it fails, calling onFrame with each data frame, and
// then reports the error that ended it.
func pump(conn *websocket.Conn, onFrame func([]byte)) <-chan error {
	done := make(chan error, 1)
	go func() {
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				done <- err
				return
			}
			onFrame(data)
		}
	}()
	return done
}

// closeOf is the close code and reason carried by err, or -1.
func closeOf(err error) (int, string) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Text
	}
	return -1, ""
}

// readClose reads through data frames until the server's close frame.
func readClose(t *testing.T, conn *websocket.Conn, within time.Duration) (int, string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(within))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			code, reason := closeOf(err)
			if code < 0 {
				t.Fatalf("connection ended without a close frame: %v", err)
			}
			return code, reason
		}
	}
}

// tryDial dials without reading anything; the connection, if any, is closed
// when the test ends.
func tryDial(t *testing.T, u string, h http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(u, h)
	if conn != nil {
		t.Cleanup(func() { _ = conn.Close() })
	}
	return conn, resp, err
}

// --- section 2: client to server ---

// clientFrame is one masked client frame. Its mask key is zero, so the
// payload goes out as it is.
func clientFrame(opcode byte, fin bool, payload []byte) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	var f []byte
	if n := len(payload); n < 126 {
		f = []byte{b0, 0x80 | byte(n)}
	} else {
		f = []byte{b0, 0x80 | 126, byte(n >> 8), byte(n)}
	}
	return cat(f, []byte{0, 0, 0, 0}, payload)
}

const (
	opContinuation = 0x0
	opBinary       = 0x2
)

// expectRefused sends a valid marker action after an offending message and
// reads until the server's close frame, which must carry code and a reason
// matching the regular expression why. The marker coming back means the
// offence was let through.
func expectRefused(t *testing.T, c *client, code int, why string) {
	t.Helper()
	marker := fstr("marker after the offence")
	_ = c.conn.WriteMessage(websocket.BinaryMessage, rawAct(marker)) // may fail once closed
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, frame, err := c.conn.ReadMessage()
		if err != nil {
			got, reason := closeOf(err)
			if got != code || !regexp.MustCompile(why).MatchString(reason) {
				t.Fatalf("closed with %d %q (%v), want %d with a reason matching %q", got, reason, err, code, why)
			}
			return
		}
		if bytes.Contains(frame, marker) {
			t.Fatal("the offending message was let through: the message after it was relayed")
		}
	}
}

func TestTextFrameIsClosedUnsupported(t *testing.T) {
	t.Parallel()
	srv := startNode(t, server.Config{Tick: 10 * time.Millisecond})
	tests := []struct {
		name   string
		before [][]byte // binary messages sent first
	}{
		{"as the first message", nil},
		{"after a binary message", [][]byte{codec.AppendCursor(nil, 1, 1)}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, srv, "ev", fmt.Sprint("u", i))
			for _, m := range tt.before {
				c.send(m)
			}
			// A valid message, but in a text frame.
			if err := c.conn.WriteMessage(websocket.TextMessage, rawAct(fstr("in a text frame"))); err != nil {
				t.Fatal(err)
			}
			expectRefused(t, c, server.CloseUnsupported, "text frames")
		})
	}
}

func TestEmptyFinalFragmentCompletesTheMessage(t *testing.T) {
	t.Parallel()
	srv := startNode(t, server.Config{Tick: 10 * time.Millisecond})
	c := dial(t, srv, "ev", "a")
	d := fstr("first")
	// RFC 6455 allows a final fragment with no payload; some clients end
	// every streamed message so.
	raw := cat(
		clientFrame(opBinary, false, rawAct(d)),
		clientFrame(opContinuation, true, nil),
	)
	if _, err := c.conn.UnderlyingConn().Write(raw); err != nil {
		t.Fatal(err)
	}
	c.action("second")
	var sawFirst bool
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, frame, err := c.conn.ReadMessage()
		if err != nil {
			code, reason := closeOf(err)
			t.Fatalf("closed with %d %q (%v), want both actions relayed", code, reason, err)
		}
		sawFirst = sawFirst || bytes.Contains(frame, d)
		if bytes.Contains(frame, []byte("second")) {
			if !sawFirst {
				t.Fatal("the second action was relayed, the first (ended by an empty fragment) was not")
			}
			return
		}
	}
}

func TestMalformedMessageIsClosedInvalidPayload(t *testing.T) {
	t.Parallel()
	srv := startNode(t, server.Config{})
	one := []byte{0x01}
	tests := []struct {
		name  string
		frame []byte
		why   string // matched by the close reason
	}{
		{"array", []byte{0x91, 0x01}, "not a map"},
		{"string", fstr("cur"), "not a map"},
		{"int", []byte{0x05}, "not a map"},
		{"unknown t", rawMap(fstr("t"), fstr("zoom"), fstr("x"), one, fstr("y"), one), "unknown t"},
		{"missing t", rawMap(fstr("x"), one, fstr("y"), one), "t missing"},
		{"t not a string", rawMap(fstr("t"), one, fstr("x"), one, fstr("y"), one), "t must be a string"},
		{"cur missing x", rawMap(fstr("t"), fstr("cur"), fstr("y"), one), "x/y missing"},
		{"cur y a string", rawCur(one, fstr("2")), "not a number"},
		{"x NaN float64", rawCur(f64(0x7ff8000000000001), one), "not finite"},
		{"y +Inf float64", rawCur(one, f64(0x7ff0000000000000)), "not finite"},
		{"x -Inf float64", rawCur(f64(0xfff0000000000000), one), "not finite"},
		{"x NaN float32", rawCur(f32(0x7fc00000), one), "not finite"},
		{"y +Inf float32", rawCur(one, f32(0x7f800000)), "not finite"},
		{"act missing d", rawMap(fstr("t"), fstr("act")), "d missing"},
		{"d nested 33 deep", rawAct(nested(33)), "too deep"},
		{"x given twice", rawMap(fstr("t"), fstr("cur"), fstr("x"), one, fstr("x"), one, fstr("y"), one), "given twice"},
		{"t given twice", rawMap(fstr("t"), fstr("act"), fstr("d"), one, fstr("t"), fstr("act")), "given twice"},
		// 10 bytes: a map whose key claims 4 GiB.
		{"str32 length beyond frame", cat([]byte{0x81, 0xdb, 0xff, 0xff, 0xff, 0xff}, []byte("abcd")), "length prefix beyond frame"},
		{"array32 of 2^32-1 elements", rawAct([]byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0x01}), "length prefix beyond frame"},
		{"trailing bytes", append(rawCur(one, one), 0xc0), "trailing bytes"},
		{"two maps", cat(rawCur(one, one), rawCur(one, one)), "trailing bytes"},
		{"empty binary frame", []byte{}, "empty message"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, srv, "ev", fmt.Sprintf("u%d", i))
			c.send(tt.frame)
			expectRefused(t, c, server.CloseInvalidPayload, tt.why)
		})
	}
}

func TestActionNested32DeepIsRelayed(t *testing.T) {
	t.Parallel()
	srv := startNode(t, server.Config{Tick: 10 * time.Millisecond})
	a := dial(t, srv, "ev", "a")
	b := dial(t, srv, "ev", "b")
	d := nested(codec.MaxDepth)
	a.send(rawAct(d))
	for {
		// Not b.next(): a batch holding a 32-deep action is 35 deep
		// (batch map, act list, [user, d] pair), deeper than next checks.
		_, frame := b.read()
		if err := codec.Validate(frame, codec.MaxDepth+3); err != nil {
			t.Fatalf("server frame fails validation: %v", err)
		}
		if bytes.Contains(frame, d) {
			return
		}
	}
}

func TestMessageOverSizeLimitIsClosedTooBig(t *testing.T) {
	t.Parallel()
	srv := startNode(t, server.Config{MaxMessage: 512})
	over := rawAct(cat([]byte{0xc5, 0x02, 0x3c}, bytes.Repeat([]byte{'x'}, 600-12))) // 600 bytes
	if len(over) != 600 {
		t.Fatalf("message of %d bytes", len(over))
	}
	tests := []struct {
		name string
		// writeBuf is the client's write buffer: a message longer than it
		// goes out as several frames.
		writeBuf int
		why      string
	}{
		{"one frame", 4096, "512|limit"},
		{"three frames of at most 256 bytes", 256, "512|limit"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &websocket.Dialer{WriteBufferSize: tt.writeBuf}
			c := dialWith(t, d, wsURL(srv, "ev", url.Values{"user": {fmt.Sprint("u", i)}}), nil)
			w, err := c.conn.NextWriter(websocket.BinaryMessage)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(over); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			expectRefused(t, c, server.CloseTooBig, tt.why)
		})
	}
}

func TestFragmentedMessageUnderLimitIsRelayed(t *testing.T) {
	t.Parallel()
	srv := startNode(t, server.Config{MaxMessage: 512, Tick: 10 * time.Millisecond})
	watcher := dial(t, srv, "ev", "w")
	d := cat([]byte{0xc5, 0x01, 0x7c}, bytes.Repeat([]byte{'f'}, 380))
	msg := rawAct(d) // 392 bytes: two frames of a 256-byte buffer
	sender := dialWith(t, &websocket.Dialer{WriteBufferSize: 256}, wsURL(srv, "ev", url.Values{"user": {"s"}}), nil)
	w, err := sender.conn.NextWriter(websocket.BinaryMessage)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{watcher, sender} {
		for {
			_, frame := c.read()
			if bytes.Contains(frame, d) {
				break
			}
		}
	}
}

func TestRateLimitIsClosedPolicyViolation(t *testing.T) {
	t.Parallel()
	srv := startNode(t, server.Config{RateLimit: 10, RateBurst: 20})
	c := dial(t, srv, "ev", "a")
	for i := range 40 {
		// The server's close may race the last writes; stop at the first
		// failure and let expectRefused judge.
		if err := c.conn.WriteMessage(websocket.BinaryMessage, codec.AppendCursor(nil, float64(i), 0)); err != nil {
			break
		}
	}
	expectRefused(t, c, server.ClosePolicyViolation, "rate limit")
}

func TestSteadyRateUnderLimitIsNotClosed(t *testing.T) {
	t.Parallel()
	// 10 messages/s, spaced at half the limit's rate; the burst of 4
	// absorbs scheduling jitter, not the load.
	srv := startNode(t, server.Config{RateLimit: 20, RateBurst: 4, Tick: 10 * time.Millisecond})
	c := dial(t, srv, "ev", "a")
	const n = 12
	for i := 1; i <= n; i++ {
		if i > 1 {
			time.Sleep(100 * time.Millisecond) // the rate is the subject
		}
		c.cursor(float64(i), 0)
	}
	// A close frame would fail c.read inside until.
	c.until(func(b batch) bool { x, _, ok := curOf(b, "a"); return ok && x == n })
}

// --- section 3: liveness ---

func TestIdleClientThatDoesNotPongIsClosedGoingAway(t *testing.T) {
	t.Parallel()
	srv := startNode(t, server.Config{PingInterval: 100 * time.Millisecond, IdleTimeout: 400 * time.Millisecond})
	c := dial(t, srv, "ev", "mute")
	c.conn.SetPingHandler(func(string) error { return nil }) // read pings, never answer
	start := time.Now()
	c.expectClose(server.CloseGoingAway, "idle")
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("closed as idle after %v, before the idle timeout", took)
	}
}

func TestPingsKeepWatchersAlive(t *testing.T) {
	t.Parallel()
	// Far apart, so that a pong delayed by a loaded machine still lands in time.
	const idle = 700 * time.Millisecond
	srv := startNode(t, server.Config{PingInterval: 100 * time.Millisecond, IdleTimeout: idle, Tick: 10 * time.Millisecond})

	// Both watchers only read. gorilla answers pings itself on the first;
	// the second counts the pings and answers them by hand.
	plain := dial(t, srv, "ev", "plain")
	counting := dial(t, srv, "ev", "counting")
	var pings atomic.Int64
	counting.conn.SetPingHandler(func(data string) error {
		pings.Add(1)
		return counting.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	lateJoined := func(seen *atomic.Bool) func([]byte) {
		return func(frame []byte) {
			if bytes.Contains(frame, []byte("late")) {
				seen.Store(true)
			}
		}
	}
	var plainSaw, countingSaw atomic.Bool
	plainDone := pump(plain.conn, lateJoined(&plainSaw))
	countingDone := pump(counting.conn, lateJoined(&countingSaw))

	time.Sleep(3 * idle) // time is the subject: outlive the idle timeout
	for name, done := range map[string]<-chan error{"plain": plainDone, "counting": countingDone} {
		select {
		case err := <-done:
			code, reason := closeOf(err)
			t.Fatalf("watcher %s was cut off after %v: %v (close %d %q)", name, 3*idle, err, code, reason)
		default:
		}
	}
	// Outliving three idle timeouts takes at least two pongs; a reader
	// that is not starved gets a ping about every 100ms.
	if n := pings.Load(); n < 2 {
		t.Fatalf("%d pings in %v with a ping interval of 100ms, want at least 2", n, 3*idle)
	}
	// Still members: a newcomer's join reaches both.
	dial(t, srv, "ev", "late")
	deadline := time.Now().Add(5 * time.Second)
	for !plainSaw.Load() || !countingSaw.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("join of late not seen after the wait: plain %v, counting %v", plainSaw.Load(), countingSaw.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tinyReceiveBuffer dials with a 4 KiB socket receive buffer, so that a
// client that stops reading backs up into the server at once.
func tinyReceiveBuffer() *websocket.Dialer {
	nd := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	return &websocket.Dialer{NetDialContext: nd.DialContext}
}

// settledStats waits until the node's batch counters stop moving.
func settledStats(t *testing.T, srv *server.Server) server.Stats {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	prev := srv.Stats()
	for {
		time.Sleep(20 * time.Millisecond)
		st := srv.Stats()
		if st.Batches == prev.Batches && st.FramesOut == prev.FramesOut {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatal("batch counters never settled")
		}
		prev = st
	}
}

func TestSlowConsumerIsClosedTryAgainLater(t *testing.T) {
	t.Parallel()
	srv := startNode(t, server.Config{MaxPending: 64 << 10, RateLimit: 1e6, RateBurst: 1e6, Tick: 5 * time.Millisecond})
	slow := dialWith(t, tinyReceiveBuffer(), wsURL(srv, "ev", url.Values{"user": {"slow"}}), nil)
	sender := dial(t, srv, "ev", "sender")
	sender.until(func(b batch) bool { return slices.Contains(b.Join, "sender") })
	// From here on every batch goes to both members until the slow one is
	// closed; after that, to the sender only.
	base := settledStats(t, srv)
	skipped := func() bool {
		st := srv.Stats()
		// A batch being written can lag by 2 frames; 3 means the slow
		// member was passed over at least once.
		return int64(2*(st.Batches-base.Batches))-int64(st.FramesOut-base.FramesOut) >= 3
	}

	const size, perRound, maxActions = 3500, 16, 4000
	var got atomic.Int64       // the sender's actions seen in its own batches
	var lastSeen atomic.Uint32 // the latest of them
	senderDone := pump(sender.conn, func(frame []byte) {
		for _, s := range blobSeqs(frame, size) {
			got.Add(1)
			lastSeen.Store(s)
		}
	})
	// echoed waits for the sender's own action seq to come back; each round
	// waits for its echo, so that no batch is larger than perRound actions.
	echoed := func(seq uint32) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for lastSeen.Load() < seq {
			select {
			case err := <-senderDone:
				code, reason := closeOf(err)
				t.Fatalf("sender cut off after %d actions: %v (close %d %q)", seq, err, code, reason)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("action %d never came back to the sender", seq)
			}
			time.Sleep(time.Millisecond)
		}
	}

	seq := uint32(0)
	for !skipped() {
		if seq >= maxActions {
			t.Fatalf("slow member still served after %d actions of %d bytes", seq, size)
		}
		for range perRound {
			seq++
			sender.send(rawAct(blob(seq, size)))
		}
		echoed(seq)
	}

	// Its buffered frames come first, then the close frame.
	code, reason := readClose(t, slow.conn, 10*time.Second)
	if code != server.CloseTryAgainLater || !strings.Contains(reason, "slow consumer") {
		t.Fatalf("slow member closed with %d %q, want %d slow consumer", code, reason, server.CloseTryAgainLater)
	}

	// The sender lost nothing and is still served.
	seq++
	sender.send(rawAct(blob(seq, size)))
	echoed(seq)
	if n := got.Load(); n != int64(seq) {
		t.Fatalf("sender saw %d of its %d actions", n, seq)
	}
}

// TestBigBatchDoesNotCloseAReaderThatIsKeepingUp pins a fault: a member
// with nothing unsent is closed as a slow consumer when one batch alone is
// larger than -max-pending.
func TestBigBatchDoesNotCloseAReaderThatIsKeepingUp(t *testing.T) {
	t.Parallel()
	const size = 3500
	srv := startNode(t, server.Config{MaxPending: 16 << 10, RateLimit: 1e6, RateBurst: 1e6, Tick: 300 * time.Millisecond})
	reader := dial(t, srv, "ev", "reader")
	sender := dial(t, srv, "ev", "sender")
	reader.until(func(b batch) bool { return slices.Contains(b.Join, "sender") })

	var last uint32
	wait := func(seq uint32) {
		t.Helper()
		_ = reader.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for last < seq {
			_, frame, err := reader.conn.ReadMessage()
			if err != nil {
				code, reason := closeOf(err)
				t.Fatalf("reader, reading all the while, was closed waiting for action %d: %d %q (%v)", seq, code, reason, err)
			}
			for _, s := range blobSeqs(frame, size) {
				last = s
			}
		}
	}
	sender.send(rawAct(blob(1, size)))
	wait(1) // sent at once; the next batch is due one tick later
	// Ten actions within that tick: one batch of about 35 KiB, while the
	// reader has nothing unsent.
	for seq := uint32(2); seq <= 11; seq++ {
		sender.send(rawAct(blob(seq, size)))
	}
	wait(11)
}

// --- token expiry and shutdown ---

func TestTokenExpiryWhileConnectedIsClosedPolicyViolation(t *testing.T) {
	t.Parallel()
	secret := []byte("s")
	srv := startNode(t, server.Config{JWTSecret: secret})
	tok, err := server.MintToken(secret, "alice", "ev", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := dialURL(t, wsURL(srv, "ev", url.Values{"token": {tok}}), nil)
	if c.welcome.Me != "alice" {
		t.Fatalf("welcome.me = %q", c.welcome.Me)
	}
	// exp is whole seconds, at most 2s away, and a few seconds of clock-skew
	// leeway may follow it.
	code, reason := readClose(t, c.conn, 10*time.Second)
	if code != server.ClosePolicyViolation || !strings.Contains(reason, "token") {
		t.Fatalf("closed with %d %q, want %d about the token", code, reason, server.ClosePolicyViolation)
	}
}

// TestTokenAdmittedWithinLeewayIsNotClosedAtOnce pins a fault: a token
// admitted thanks to the clock-skew leeway is closed as expired by the next
// liveness sweep, about a second after its welcome.
func TestTokenAdmittedWithinLeewayIsNotClosedAtOnce(t *testing.T) {
	t.Parallel()
	secret := []byte("s")
	srv := startNode(t, server.Config{JWTSecret: secret, Tick: 10 * time.Millisecond})
	tok := signToken(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{
		"sub": "alice", "event": "ev", "exp": time.Now().Add(-2 * time.Second).Unix(),
	})
	c := dialURL(t, wsURL(srv, "ev", url.Values{"token": {tok}}), nil)
	time.Sleep(1500 * time.Millisecond) // time is the subject: past a sweep, within the leeway
	c.cursor(1, 2)
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, frame, err := c.conn.ReadMessage()
		if err != nil {
			code, reason := closeOf(err)
			t.Fatalf("connection admitted within the leeway was closed %v later: %d %q", 1500*time.Millisecond, code, reason)
		}
		if bytes.Contains(frame, []byte("cur")) {
			return
		}
	}
}

func TestShutdownClosesGoingAwayAndRefusesNewConnections(t *testing.T) {
	t.Parallel()
	srv := startNode(t, server.Config{})
	u := wsURL(srv, "ev", nil)
	c := dial(t, srv, "ev", "a")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	c.expectClose(server.CloseGoingAway, "shutting down")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	if _, resp, err := tryDial(t, u, nil); err == nil {
		t.Fatalf("dial after shutdown succeeded (%v)", resp.Status)
	}
}

// --- section 1: refusals before the upgrade ---

func eventURL(srv *server.Server, rawEvent string, q url.Values) string {
	return fmt.Sprintf("http://%s/v1/events/%s/ws?%s", srv.Addr(), rawEvent, q.Encode())
}

func withHeader(h http.Header, kv ...string) http.Header {
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func without(h http.Header, key string) http.Header {
	h = h.Clone()
	h.Del(key)
	return h
}

func TestRefusedBeforeUpgrade(t *testing.T) {
	t.Parallel()
	secret := []byte("secret-for-tests")
	open := startNode(t, server.Config{})
	guarded := startNode(t, server.Config{AllowedOrigins: []string{"https://ok.example"}})
	// A token node with an origin list, full with one connection.
	full := startNode(t, server.Config{JWTSecret: secret, AllowedOrigins: []string{"https://ok.example"}, MaxConns: 1})
	tokFor := func(user string) string {
		tok, err := server.MintToken(secret, user, "ev", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	dialURL(t, wsURL(full, "ev", url.Values{"token": {tokFor("first")}}), nil)
	badTok := url.Values{"token": {"not-a-token"}}
	goodTok := url.Values{"token": {tokFor("second")}}

	up := upgradeHeaders()
	tests := []struct {
		name       string
		srv        *server.Server
		rawEvent   string
		query      url.Values
		header     http.Header
		status     int
		body       string            // in the body
		wantHeader map[string]string // in the response
	}{
		{"event ID of 129 characters", open, strings.Repeat("e", 129), nil, up, 400, "event ID", nil},
		{"event ID with a space", open, "a%20b", nil, up, 400, "event ID", nil},
		{"event ID with a slash", open, "ev%2Fx", nil, up, 400, "event ID", nil},
		{"event ID with a non-ASCII letter", open, "%C3%A9", nil, up, 400, "event ID", nil},
		{"plain GET", open, "ev", nil, nil, 400, "WebSocket", nil},
		{"empty event ID", open, "", nil, up, 400, "event ID", nil},
		{"upgrade without a key", open, "ev", nil, without(up, "Sec-Websocket-Key"), 400, "Sec-WebSocket-Key", nil},
		{"upgrade with an empty key", open, "ev", nil, withHeader(up, "Sec-Websocket-Key", ""), 400, "Sec-WebSocket-Key", nil},
		{"WebSocket version 8", open, "ev", nil, withHeader(up, "Sec-Websocket-Version", "8"), 426, "version", map[string]string{"Sec-WebSocket-Version": "13"}},
		{"user of 65 characters", open, "ev", url.Values{"user": {strings.Repeat("u", 65)}}, up, 400, "user", nil},
		{"user with a dollar", open, "ev", url.Values{"user": {"a$b"}}, up, 400, "user", nil},
		{"empty user", open, "ev", url.Values{"user": {""}}, up, 400, "user", nil},
		{"origin not allowed", guarded, "ev", nil, withHeader(up, "Origin", "https://evil.example"), 403, "origin", nil},
		// Order: event ID, upgrade headers, origin, identity, capacity.
		{"bad event ID before upgrade headers", open, "a%20b", nil, nil, 400, "event ID", nil},
		{"upgrade headers before origin", full, "ev", badTok, withHeader(nil, "Origin", "https://evil.example"), 400, "WebSocket", nil},
		{"origin before token", full, "ev", badTok, withHeader(up, "Origin", "https://evil.example"), 403, "origin", nil},
		{"token before capacity", full, "ev", badTok, up, 401, "token", nil},
		{"valid token on a full node", full, "ev", goodTok, up, 503, "full", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := httpGet(t, eventURL(tt.srv, tt.rawEvent, tt.query), tt.header)
			if resp.StatusCode != tt.status || !strings.Contains(body, tt.body) {
				t.Fatalf("got %d %q, want %d with a body containing %q", resp.StatusCode, body, tt.status, tt.body)
			}
			for k, v := range tt.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Fatalf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestAllowedOriginsAdmitListedAndNonBrowserClients(t *testing.T) {
	t.Parallel()
	srv := startNode(t, server.Config{AllowedOrigins: []string{"https://ok.example"}})
	for name, h := range map[string]http.Header{
		"listed origin": {"Origin": {"https://ok.example"}},
		"no origin":     nil,
	} {
		t.Run(name, func(t *testing.T) {
			c := dialURL(t, wsURL(srv, "ev", nil), h)
			if c.welcome.Event != "ev" {
				t.Fatalf("welcome = %+v", c.welcome)
			}
		})
	}
}

func TestFullNodeAdmitsAgainWhenAConnectionCloses(t *testing.T) {
	t.Parallel()
	srv := startNode(t, server.Config{MaxConns: 2})
	a := dial(t, srv, "ev", "a")
	dial(t, srv, "ev", "b")
	_, resp, err := tryDial(t, wsURL(srv, "ev", nil), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third connection: %v %v, want 503", err, resp)
	}
	if status, body := httpStatus(t, wsURL(srv, "ev", nil), upgradeHeaders()); status != 503 || body == "" {
		t.Fatalf("third connection: %d %q, want 503 with a reason", status, body)
	}
	_ = a.conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, _, err := tryDial(t, wsURL(srv, "ev", nil), nil)
		if err == nil {
			_ = conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection admitted after one of two closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// --- token mode ---

func signToken(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokenMode(t *testing.T) {
	t.Parallel()
	secret := []byte("secret-for-tests")
	srv := startNode(t, server.Config{JWTSecret: secret})
	exp := time.Now().Add(time.Minute).Unix()
	claims := func(kv ...any) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "alice", "event": "ev", "exp": exp}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	hs256 := func(c jwt.MapClaims) string { return signToken(t, jwt.SigningMethodHS256, secret, c) }
	valid := hs256(claims())
	minted, err := server.MintToken(secret, "bob", "ev", time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	const accepted = http.StatusSwitchingProtocols
	tests := []struct {
		name   string
		query  url.Values
		bearer string // Authorization: Bearer ...
		status int
		me     string // welcome.me when accepted
	}{
		{"no token", nil, "", 401, ""},
		{"malformed token", url.Values{"token": {"a.b.c"}}, "", 401, ""},
		{"signed with another secret", url.Values{"token": {signToken(t, jwt.SigningMethodHS256, []byte("other"), claims())}}, "", 401, ""},
		{"alg none", url.Values{"token": {signToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims())}}, "", 401, ""},
		{"HS512 with the right secret", url.Values{"token": {signToken(t, jwt.SigningMethodHS512, secret, claims())}}, "", 401, ""},
		{"expired a minute ago", url.Values{"token": {hs256(claims("exp", time.Now().Add(-time.Minute).Unix()))}}, "", 401, ""},
		{"expired 2s ago, within the leeway", url.Values{"token": {hs256(claims("exp", time.Now().Add(-2*time.Second).Unix()))}}, "", accepted, "alice"},
		{"no exp", url.Values{"token": {hs256(claims("exp", nil))}}, "", 401, ""},
		{"no event", url.Values{"token": {hs256(claims("event", nil))}}, "", 401, ""},
		{"no sub", url.Values{"token": {hs256(claims("sub", nil))}}, "", 401, ""},
		{"sub with invalid characters", url.Values{"token": {hs256(claims("sub", "al ice!"))}}, "", 401, ""},
		{"sub of 65 characters", url.Values{"token": {hs256(claims("sub", strings.Repeat("a", 65)))}}, "", 401, ""},
		{"token for another event", url.Values{"token": {hs256(claims("event", "other"))}}, "", 403, ""},
		{"query and header tokens differ", url.Values{"token": {valid}}, minted, 401, ""},
		{"same token in query and header", url.Values{"token": {valid}}, valid, accepted, "alice"},
		{"valid in the query", url.Values{"token": {valid}}, "", accepted, "alice"},
		{"valid in the header", nil, valid, accepted, "alice"},
		{"minted by MintToken", url.Values{"token": {minted}}, "", accepted, "bob"},
		{"user parameter is ignored", url.Values{"token": {valid}, "user": {"mallory"}}, "", accepted, "alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h http.Header
			if tt.bearer != "" {
				h = http.Header{"Authorization": {"Bearer " + tt.bearer}}
			}
			u := wsURL(srv, "ev", tt.query)
			if tt.status == accepted {
				c := dialURL(t, u, h)
				if c.welcome.Me != tt.me {
					t.Fatalf("welcome.me = %q, want %q", c.welcome.Me, tt.me)
				}
				return
			}
			for k, v := range upgradeHeaders() {
				if h == nil {
					h = http.Header{}
				}
				h[k] = v
			}
			status, body := httpStatus(t, u, h)
			if status != tt.status || body == "" {
				t.Fatalf("got %d %q, want %d with a reason", status, body, tt.status)
			}
		})
	}
}
