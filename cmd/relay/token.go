package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/relay-dev/relay/server"
)

func token(args []string) error {
	fs := flag.NewFlagSet("relay token", flag.ExitOnError)
	user := fs.String("user", "", "user ID (the token's sub); required")
	event := fs.String("event", "", "event ID the token admits to; required")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	secretFile := fs.String("jwt-secret-file", "", "file holding the HS256 secret (or set RELAY_JWT_SECRET)")
	if err := envDefaults(fs, map[string]string{"jwt-secret-file": "RELAY_JWT_SECRET_FILE"}); err != nil {
		return err
	}
	_ = fs.Parse(args)
	if *user == "" || *event == "" {
		return fmt.Errorf("token: -user and -event are required")
	}
	secret, err := readSecret(*secretFile)
	if err != nil {
		return err
	}
	tok, err := server.MintToken(secret, *user, *event, *ttl)
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}
