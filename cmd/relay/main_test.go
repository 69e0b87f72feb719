package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/relay-dev/relay/codec"
)

func TestJSONLinesBecomeValidMessages(t *testing.T) {
	cases := []struct {
		line    string
		wantErr string
	}{
		{`{"t":"cur","x":1,"y":2.5}`, ""},
		{`{"t":"act","d":{"emoji":"wave","n":[1,2,3]}}`, ""},
		{`{"t":"cur","x":1}`, "x/y missing"},
		{`[1,2]`, "JSON object"},
		{`not json`, "not JSON"},
	}
	for _, tc := range cases {
		msg, err := jsonToMsgpack([]byte(tc.line))
		if err == nil {
			var m codec.Message
			err = codec.Decode(msg, &m)
		}
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.line, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one mentioning %q", tc.line, err, tc.wantErr)
		}
	}
}

func TestIntegersStayIntegers(t *testing.T) {
	msg, err := jsonToMsgpack([]byte(`{"t":"act","d":{"n":3,"f":0.5}}`))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := msgpack.Unmarshal(msg, &v); err != nil {
		t.Fatal(err)
	}
	d := v["d"].(map[string]any)
	switch d["n"].(type) {
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64:
	default:
		t.Errorf("3 decoded as %T, want an integer type", d["n"])
	}
	if _, ok := d["f"].(float64); !ok {
		t.Errorf("0.5 decoded as %T, want float64", d["f"])
	}
}

func TestFlagsTakeTheirEnvironmentTwinButAFlagWins(t *testing.T) {
	t.Setenv("RELAY_ADDR", "127.0.0.1:9999")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "")
	if err := envDefaults(fs, map[string]string{"addr": "RELAY_ADDR"}); err != nil {
		t.Fatal(err)
	}
	if *addr != "127.0.0.1:9999" {
		t.Fatalf("env twin ignored: %s", *addr)
	}
	_ = fs.Parse([]string{"-addr", "127.0.0.1:7777"})
	if *addr != "127.0.0.1:7777" {
		t.Fatalf("flag lost to env: %s", *addr)
	}
}

func TestSecretComesFromFileOrEnvironment(t *testing.T) {
	t.Setenv("RELAY_JWT_SECRET", "from-env")
	if s, _ := readSecret(""); string(s) != "from-env" {
		t.Fatalf("secret %q, want from-env", s)
	}
	f := filepath.Join(t.TempDir(), "secret")
	_ = os.WriteFile(f, []byte("from-file\n"), 0o600)
	if s, _ := readSecret(f); string(s) != "from-file" {
		t.Fatalf("secret %q, want from-file", s)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	_ = os.WriteFile(empty, nil, 0o600)
	if _, err := readSecret(empty); err == nil {
		t.Fatal("an empty secret file was accepted")
	}
}

// TestServeAndJoin is the README's first demo with the real binary: a
// standalone node and two `relay join` clients; a line typed at one shows
// up at the other.
func TestServeAndJoin(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "relay")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	serve := exec.CommandContext(ctx, bin, "serve", "-addr", addr, "-node", "demo")
	serve.Env = append(os.Environ(), "RELAY_AMQP_URL=", "RELAY_JWT_SECRET=")
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = serve.Process.Signal(os.Interrupt); _ = serve.Wait() })
	waitHealthy(t, addr)

	bob := exec.CommandContext(ctx, bin, "join", "-addr", addr, "-event", "lobby", "-user", "bob")
	bobIn, _ := bob.StdinPipe()
	bobOut, _ := bob.StdoutPipe()
	if err := bob.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bobIn.Close(); _ = bob.Wait() })
	lines := bufio.NewScanner(bobOut)
	if !lines.Scan() || !strings.Contains(lines.Text(), `"t":"welcome"`) {
		t.Fatalf("bob's first line is not a welcome: %q", lines.Text())
	}

	alice := exec.CommandContext(ctx, bin, "join", "-addr", addr, "-event", "lobby", "-user", "alice", "-linger", "500ms")
	alice.Stdin = strings.NewReader(`{"t":"cur","x":10,"y":20}` + "\n")
	if out, err := alice.CombinedOutput(); err != nil {
		t.Fatalf("alice: %v\n%s", err, out)
	}
	for lines.Scan() {
		if strings.Contains(lines.Text(), `"cur":[["alice",10,20]]`) {
			return
		}
	}
	t.Fatalf("bob never saw alice's cursor (%v)", lines.Err())
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHealthy(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(fmt.Sprintf("http://%s/healthz", addr))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("node on %s never became healthy", addr)
}
