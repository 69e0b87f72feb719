// Package deploy holds what runs a relay node on a machine rather than
// code the relay links: the kernel settings for a million connections
// (sysctl/relay.conf), the script that checks and applies them (tune.sh),
// the systemd unit and its environment file, and the broker helper for
// tests (broker.sh). Its Go tests check those files and scripts.
package deploy
