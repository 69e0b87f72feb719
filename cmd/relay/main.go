// Command relay runs a relay node (serve), joins an event as a client from
// the terminal (join), and mints tokens for token mode (token).
package main

import (
	"fmt"
	"os"
)

const usage = `relay: a real-time relay for cursors and actions over WebSocket.

Usage:
  relay serve [flags]   run a node (see relay serve -h)
  relay join  [flags]   join an event: print frames as JSON lines, send JSON lines from stdin
  relay token [flags]   mint a token for token mode
  relay bench [flags]   run the C1M bench harness (see bench/README.md)

Every flag has an environment twin, named in its help.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "join":
		err = join(os.Args[2:])
	case "token":
		err = token(os.Args[2:])
	case "bench":
		err = benchCmd(os.Args[2:])
	case "bench-worker":
		err = benchWorker()
	case "baseline":
		err = baselineCmd(os.Args[2:])
	case "-h", "-help", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "relay: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
}
