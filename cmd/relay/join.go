package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/relay-dev/relay/codec"
)

func join(args []string) error {
	fs := flag.NewFlagSet("relay join", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "node address (host:port)")
	event := fs.String("event", "lobby", "event ID to join")
	user := fs.String("user", "", "user ID in open mode; empty lets the server pick")
	tok := fs.String("token", "", "token for token mode (see relay token)")
	linger := fs.Duration("linger", time.Second, "after standard input ends, keep printing frames this long, then leave")
	if err := envDefaults(fs, map[string]string{"addr": "RELAY_ADDR", "token": "RELAY_TOKEN"}); err != nil {
		return err
	}
	_ = fs.Parse(args)

	u := url.URL{Scheme: "ws", Host: *addr, Path: "/v1/events/" + url.PathEscape(*event) + "/ws"}
	q := url.Values{}
	if *user != "" {
		q.Set("user", *user)
	}
	if *tok != "" {
		q.Set("token", *tok)
	}
	u.RawQuery = q.Encode()
	conn, resp, err := websocket.DefaultDialer.Dial(u.String(), nil)
	if err != nil {
		return dialError(redacted(u), resp, err)
	}
	defer conn.Close()

	var writeMu sync.Mutex // gorilla allows one writer at a time
	done := make(chan error, 1)
	go func() { done <- printFrames(conn, os.Stdout) }()
	go sendLines(conn, &writeMu, os.Stdin, *linger)

	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt)
	defer signal.Stop(interrupt)
	select {
	case err := <-done:
		return err
	case <-interrupt:
		leave(conn, &writeMu)
		select {
		case <-done:
		case <-time.After(time.Second):
		}
		return nil
	}
}

// redacted is u for messages: the token is a credential.
func redacted(u url.URL) string {
	q := u.Query()
	if q.Has("token") {
		q.Set("token", "REDACTED")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func dialError(u string, resp *http.Response, err error) error {
	if resp == nil {
		return fmt.Errorf("join %s: %w", u, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Errorf("join %s: HTTP %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
}

// printFrames prints every frame as one JSON line until the connection ends.
func printFrames(conn *websocket.Conn, out io.Writer) error {
	w := bufio.NewWriter(out)
	for {
		mt, data, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				if ce.Code == websocket.CloseNormalClosure {
					return nil
				}
				return fmt.Errorf("closed by server: %d %s", ce.Code, ce.Text)
			}
			return err
		}
		if mt != websocket.BinaryMessage {
			return fmt.Errorf("server sent a text frame: %q", data)
		}
		line, err := frameJSON(data)
		if err != nil {
			return err
		}
		_, _ = w.Write(line)
		_ = w.WriteByte('\n')
		_ = w.Flush()
	}
}

// frameJSON renders one server frame as JSON. The frame is checked by the
// bounded walk first, so that hostile length prefixes never reach the
// MessagePack library's generic decoder.
func frameJSON(frame []byte) ([]byte, error) {
	// A batch nests an action's d three deep: map, act list, entry.
	if err := codec.Validate(frame, codec.MaxDepth+3); err != nil {
		return nil, fmt.Errorf("bad frame from server: %w", err)
	}
	var v any
	if err := msgpack.Unmarshal(frame, &v); err != nil {
		return nil, fmt.Errorf("bad frame from server: %w", err)
	}
	return json.Marshal(v)
}

// sendLines sends each JSON line of in as one MessagePack message.
func sendLines(conn *websocket.Conn, mu *sync.Mutex, in io.Reader, linger time.Duration) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		msg, err := jsonToMsgpack(line)
		if err == nil {
			// Check locally what the server would refuse with 1007, so a
			// typo costs a warning instead of the connection.
			var m codec.Message
			err = codec.Decode(msg, &m)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "relay join: skipped line: %v\n", err)
			continue
		}
		mu.Lock()
		err = conn.WriteMessage(websocket.BinaryMessage, msg)
		mu.Unlock()
		if err != nil {
			return
		}
	}
	time.Sleep(linger)
	leave(conn, mu)
}

func leave(conn *websocket.Conn, mu *sync.Mutex) {
	mu.Lock()
	defer mu.Unlock()
	_ = conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
}

// jsonToMsgpack converts one JSON object to a MessagePack map; integers
// stay integers, other numbers become float64.
func jsonToMsgpack(line []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, errors.New(`want a JSON object such as {"t":"cur","x":1,"y":2}`)
	}
	return msgpack.Marshal(numbers(v))
}

func numbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case map[string]any:
		for k, e := range t {
			t[k] = numbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = numbers(e)
		}
	}
	return v
}
