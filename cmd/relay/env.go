package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// envDefaults lets every flag default to its environment twin, so that
// RELAY_ADDR=... works like -addr=... and an explicit flag still wins.
func envDefaults(fs *flag.FlagSet, twins map[string]string) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env, ok := twins[f.Name]
		if !ok {
			return
		}
		f.Usage += fmt.Sprintf(" (env %s)", env)
		if v, set := os.LookupEnv(env); set {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
			f.DefValue = v
		}
	})
	return errors.Join(errs...)
}

// readSecret reads the HS256 secret from the environment or a file, never
// from argv, where other users of the machine could read it.
func readSecret(file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read -jwt-secret-file: %w", err)
		}
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			return nil, fmt.Errorf("-jwt-secret-file %s is empty", file)
		}
		return []byte(s), nil
	}
	return []byte(os.Getenv("RELAY_JWT_SECRET")), nil
}
