package server

import (
	"crypto/rand"
	"encoding/hex"
)

// Limits of PROTOCOL.md section 1.
const (
	maxEventIDLen = 128
	maxUserIDLen  = 64
)

// validID reports whether s is 1 to max characters from A-Z a-z 0-9 . _ : -
func validID(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidEventID reports whether s is a valid event ID.
func ValidEventID(s string) bool { return validID(s, maxEventIDLen) }

// ValidUserID reports whether s is a valid user ID.
func ValidUserID(s string) bool { return validID(s, maxUserIDLen) }

// randomUserID names an anonymous user in open mode.
func randomUserID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "anon-" + hex.EncodeToString(b[:])
}
