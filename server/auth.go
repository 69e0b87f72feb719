package server

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// clockSkew is the leeway allowed on a token's exp (PROTOCOL.md: "a few
// seconds").
const clockSkew = 5 * time.Second

// identity is who a request is, once admitted.
type identity struct {
	user    string
	expires time.Time // zero in open mode
}

// httpError is a refusal answered before the upgrade.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func refuse(status int, msg string) *httpError { return &httpError{status, msg} }

// Claims are the token claims the relay reads.
type Claims struct {
	Event string `json:"event"`
	jwt.RegisteredClaims
}

// authenticate decides who r is, for event. In token mode it needs a valid
// HS256 token for event; in open mode it takes ?user= or makes one up.
func (s *Server) authenticate(r *http.Request, event string) (identity, *httpError) {
	if len(s.cfg.JWTSecret) == 0 {
		return openIdentity(r)
	}
	raw, herr := tokenOf(r)
	if herr != nil {
		return identity{}, herr
	}
	claims := &Claims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) {
		return s.cfg.JWTSecret, nil
	},
		jwt.WithValidMethods([]string{"HS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(clockSkew),
	)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return identity{}, refuse(http.StatusUnauthorized, "token expired: get a new one")
	case err != nil:
		return identity{}, refuse(http.StatusUnauthorized, "invalid token: "+err.Error())
	}
	if !ValidUserID(claims.Subject) {
		return identity{}, refuse(http.StatusUnauthorized, "invalid token: sub must be 1 to 64 characters from A-Z a-z 0-9 . _ : -")
	}
	if claims.Event == "" {
		return identity{}, refuse(http.StatusUnauthorized, "invalid token: the event claim is missing")
	}
	if claims.Event != event {
		return identity{}, refuse(http.StatusForbidden, "token admits to another event")
	}
	return identity{user: claims.Subject, expires: claims.ExpiresAt.Time}, nil
}

// tokenOf finds the token in the query or the Authorization header; both may
// be given only if they agree.
func tokenOf(r *http.Request) (string, *httpError) {
	if len(r.URL.Query()["token"]) > 1 {
		return "", refuse(http.StatusUnauthorized, "more than one token in the query: send one")
	}
	query := r.URL.Query().Get("token")
	var header string
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, value, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(value) == "" {
			return "", refuse(http.StatusUnauthorized, "Authorization header must be 'Bearer <token>'")
		}
		header = strings.TrimSpace(value)
	}
	switch {
	case query == "" && header == "":
		return "", refuse(http.StatusUnauthorized, "token required: pass ?token=... or Authorization: Bearer ...")
	case query != "" && header != "" && query != header:
		return "", refuse(http.StatusUnauthorized, "the query token and the Authorization token differ: send one")
	case header != "":
		return header, nil
	default:
		return query, nil
	}
}

func openIdentity(r *http.Request) (identity, *httpError) {
	q := r.URL.Query()
	if !q.Has("user") {
		return identity{user: randomUserID()}, nil
	}
	user := q.Get("user")
	if !ValidUserID(user) {
		return identity{}, refuse(http.StatusBadRequest, "user must be 1 to 64 characters from A-Z a-z 0-9 . _ : -")
	}
	return identity{user: user}, nil
}

// MintToken signs a token admitting user to event until now+ttl.
func MintToken(secret []byte, user, event string, ttl time.Duration) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("server: no secret: set RELAY_JWT_SECRET or -jwt-secret-file")
	}
	if !ValidUserID(user) {
		return "", errors.New("server: user must be 1 to 64 characters from A-Z a-z 0-9 . _ : -")
	}
	if !ValidEventID(event) {
		return "", errors.New("server: event must be 1 to 128 characters from A-Z a-z 0-9 . _ : -")
	}
	now := time.Now()
	claims := Claims{
		Event: event,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   user,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}
