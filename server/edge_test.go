package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/relay-dev/relay/server"
)

// Regression: Go's query parser drops a malformed pair, and the user it
// named silently became an anonymous one.
func TestMalformedQueryIsRefused(t *testing.T) {
	srv := startNode(t, server.Config{})
	u := "http://" + srv.Addr() + "/v1/events/ev/ws?user=%zz"
	status, body := httpStatus(t, u, upgradeHeaders())
	if status != http.StatusBadRequest || !strings.Contains(body, "query") {
		t.Fatalf("got %d %q, want 400 about the query", status, body)
	}
}

func TestTwoQueryTokensAreRefused(t *testing.T) {
	secret := []byte("secret-for-tests")
	srv := startNode(t, server.Config{JWTSecret: secret})
	tok, err := server.MintToken(secret, "alice", "ev", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"token": {tok, "garbage"}}
	status, body := httpStatus(t, "http://"+srv.Addr()+"/v1/events/ev/ws?"+q.Encode(), upgradeHeaders())
	if status != http.StatusUnauthorized || body == "" {
		t.Fatalf("got %d %q, want 401", status, body)
	}
}

// Regression: empty continuation frames cost nothing against the size cap
// and kept one message open without end.
func TestEndlessFragmentsAreClosed(t *testing.T) {
	srv := startNode(t, server.Config{})
	c := dial(t, srv, "ev", "frag")
	nc := c.conn.NetConn()
	// A fragmented message by hand (gorilla makes no empty fragments): a
	// first frame, then empty continuations, masked with a zero key.
	frame := func(first byte, payload []byte) []byte {
		f := []byte{first, 0x80 | byte(len(payload)), 0, 0, 0, 0}
		return append(f, payload...)
	}
	_, _ = nc.Write(frame(0x02, []byte{0x81}))
	for range 100 {
		if _, err := nc.Write(frame(0x00, nil)); err != nil {
			break
		}
	}
	c.expectClose(1008, "fragments")
}
