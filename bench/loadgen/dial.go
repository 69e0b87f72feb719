package loadgen

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lesismal/nbio"
)

// dialTimeout bounds the TCP connect and, separately, the handshake.
const dialTimeout = 10 * time.Second

// paceTick is how often the dial pacer refills its bucket.
const paceTick = 5 * time.Millisecond

// errHandshake is a handshake answer that is not a valid WebSocket upgrade.
var errHandshake = errors.New("loadgen: bad WebSocket handshake answer")

// statusError is a handshake answered with an HTTP status other than 101.
type statusError struct{ code int }

func (e *statusError) Error() string {
	return fmt.Sprintf("loadgen: handshake answered HTTP %d", e.code)
}

// dialAll opens every connection that is not open, at most DialConcurrency
// handshakes at a time and at most DialRate new ones per second. It returns
// when every connection has been tried or ctx ends.
func (w *worker) dialAll(ctx context.Context) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range w.cfg.DialConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReaderSize(nil, 4096)
			for i := range jobs {
				w.dialOne(ctx, i, br)
			}
		}()
	}
	todo := make([]int, 0, len(w.cfg.Conns))
	for i, c := range w.conns {
		if c == nil || c.state.Load() == stGone {
			todo = append(todo, i) // never opened, or closed since: (re)open
		}
	}
	pace(ctx, len(todo), w.cfg.DialRate, func(k int) bool {
		select {
		case jobs <- todo[k]:
			return true
		case <-ctx.Done():
			return false
		}
	})
	close(jobs)
	wg.Wait()
}

// pace calls emit(0), emit(1), ... emit(n-1) at most rate times per second
// (no limit if rate <= 0) from a token bucket refilled every paceTick and
// holding at most two ticks' worth, so time spent blocked in emit is not
// made up in a burst afterwards. It stops early when emit returns false.
func pace(ctx context.Context, n int, rate float64, emit func(int) bool) {
	if rate <= 0 {
		for i := 0; i < n; i++ {
			if !emit(i) {
				return
			}
		}
		return
	}
	ticker := time.NewTicker(paceTick)
	defer ticker.Stop()
	burst := max(1, 2*rate*paceTick.Seconds())
	tokens, last := 1.0, time.Now()
	for i := 0; i < n; {
		for ; tokens >= 1 && i < n; i++ {
			if !emit(i) {
				return
			}
			tokens--
		}
		if i == n {
			return
		}
		select {
		case <-ctx.Done():
			return
		case now := <-ticker.C:
			tokens = min(burst, tokens+rate*now.Sub(last).Seconds())
			last = now
		}
	}
}

// dialOne opens connection i, completes its handshake on the blocking
// socket and hands it to the event loops.
func (w *worker) dialOne(ctx context.Context, i int, br *bufio.Reader) {
	cc := w.cfg.Conns[i]
	d := net.Dialer{Timeout: dialTimeout}
	if len(w.local) > 0 {
		d.LocalAddr = w.local[i%len(w.local)]
	}
	nc, err := d.DialContext(ctx, "tcp", cc.Addr)
	if err != nil {
		w.dialFailed(ctx, err)
		return
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	rest, err := handshake(nc, br, cc)
	stop()
	if err != nil {
		_ = nc.Close()
		w.dialFailed(ctx, err)
		return
	}
	w.t.dialed.Add(1)
	// NBConn duplicates the descriptor and closes nc.
	nb, err := nbio.NBConn(nc)
	if err != nil {
		_ = nc.Close()
		w.t.dialFailed.add("nbio")
		return
	}
	c := &conn{sock: nb, sh: w.shardOf(nb), user: cc.User, owed: uint64(max(0, cc.EventSize-1))}
	nb.SetSession(c)
	w.conns[i] = c
	if !w.register(c, nb, rest) {
		w.t.dialFailed.add("nbio")
	}
}

// register reads what came with the handshake (often the welcome) and hands
// c to its event loop. The shard lock also publishes c's fields to the loop.
func (w *worker) register(c *conn, nb *nbio.Conn, rest []byte) bool {
	sh := c.sh
	sh.mu.Lock()
	if len(rest) > 0 {
		sh.receive(c, rest, time.Now().UnixNano())
	}
	if c.closeNow {
		sh.gone(c, nil)
		sh.mu.Unlock()
		_ = nb.Close()
		return true
	}
	c.live = true
	w.t.open.Add(1)
	sh.mu.Unlock()
	if _, err := w.engine.AddConn(nb); err != nil {
		// nbio has closed it, and may or may not call OnClose: gone counts once.
		sh.mu.Lock()
		c.dropped = true // a failed dial, not a drop
		sh.gone(c, err)
		sh.mu.Unlock()
		return false
	}
	return true
}

// handshake sends the upgrade request for cc on nc and checks the answer. It
// returns the bytes read past the answer's headers: the server's first
// frames often come in the same read.
func handshake(nc net.Conn, br *bufio.Reader, cc Conn) ([]byte, error) {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])
	req := "GET /v1/events/" + url.PathEscape(cc.Event) + "/ws?user=" + url.QueryEscape(cc.User) + " HTTP/1.1\r\n" +
		"Host: " + cc.Addr + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"
	if err := nc.SetDeadline(time.Now().Add(dialTimeout)); err != nil {
		return nil, err
	}
	if _, err := io.WriteString(nc, req); err != nil {
		return nil, err
	}
	br.Reset(nc)
	defer br.Reset(nil)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, &statusError{resp.StatusCode}
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") ||
		resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key) {
		return nil, errHandshake
	}
	rest, _ := br.Peek(br.Buffered())
	rest = append([]byte(nil), rest...)
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return rest, nil
}

// acceptKey is the Sec-WebSocket-Accept the server must answer to key.
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// dialFailed counts a failed dial by cause, unless the worker is exiting.
func (w *worker) dialFailed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	w.t.dialFailed.add(dialCause(err))
}

// dialCause names why a dial failed: refused, timeout, http-<status>,
// addr-in-use, eaddrnotavail, emfile (out of file descriptors), reset, eof
// (closed during the handshake), handshake (not a valid upgrade answer) or
// other.
func dialCause(err error) string {
	var se *statusError
	var ne net.Error
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("http-%d", se.code)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.EADDRINUSE):
		return "addr-in-use"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "eaddrnotavail"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "emfile"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, errHandshake):
		return "handshake"
	}
	return "other"
}
