package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The web UI's login. A browser sends no bearer header, so a person logs
// in with a token once and gets a session cookie:
//
//	slogate_session = base64url(token name) "." expiry (Unix) "." nonce "." MAC
//
// MAC is HMAC-SHA256 of the rest under the token's session key (derived
// from the token's value, which the cookie never holds). The cookie is
// Secure, HttpOnly and SameSite=Strict; it is accepted for reads of the
// API (GET) and the UI's pages. Forms that change something (overrides)
// also carry a per-session CSRF token (an HMAC of the session under the
// same key) and must come from the UI's own origin.

const (
	sessionCookie = "slogate_session"
	// SessionTTL is how long a UI login lasts.
	SessionTTL = 12 * time.Hour
)

var b64 = base64.RawURLEncoding

func newOpenKey() (k [sha256.Size]byte) {
	_, _ = rand.Read(k[:])
	return k
}

func mac(key [sha256.Size]byte, parts ...string) string {
	h := hmac.New(sha256.New, key[:])
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return b64.EncodeToString(h.Sum(nil))
}

// issueSession returns the cookie value of a new session of t.
func (a *auth) issueSession(t hashedToken, now time.Time) string {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	payload := b64.EncodeToString([]byte(t.name)) + "." + strconv.FormatInt(now.Add(SessionTTL).Unix(), 10) + "." + b64.EncodeToString(nonce)
	return payload + "." + mac(t.sessionKey, "session", payload)
}

// session returns the token of the request's valid session cookie and the
// session's CSRF token.
func (a *auth) session(r *http.Request) (hashedToken, string, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return hashedToken{}, "", false
	}
	payload, sig, ok := cutLast(ck.Value, ".")
	if !ok {
		return hashedToken{}, "", false
	}
	parts := strings.Split(payload, ".")
	if len(parts) != 3 {
		return hashedToken{}, "", false
	}
	name, err := b64.DecodeString(parts[0])
	if err != nil {
		return hashedToken{}, "", false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || time.Now().Unix() >= exp {
		return hashedToken{}, "", false
	}
	for _, t := range a.tokens {
		if t.name != string(name) {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(mac(t.sessionKey, "session", payload)), []byte(sig)) == 1 {
			return t, mac(t.sessionKey, "csrf", payload), true
		}
	}
	return hashedToken{}, "", false
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+len(sep):], true
}

// openCSRF is the CSRF token of the UI's forms when no tokens are
// configured (the API is open on loopback, but another site's page must
// still not post the UI's forms).
func (a *auth) openCSRF() string { return mac(a.openKey, "csrf", "open") }

// sessionCookieFor sets (value) or clears ("") the session cookie.
// Chromium and Firefox store Secure cookies from http://localhost and
// http://127.0.0.1 (potentially trustworthy origins), so the cookie is
// Secure on loopback too.
func sessionCookieFor(value string) *http.Cookie {
	ck := &http.Cookie{Name: sessionCookie, Value: value, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode}
	if value == "" {
		ck.MaxAge = -1
	} else {
		ck.MaxAge = int(SessionTTL / time.Second)
	}
	return ck
}

// sameOrigin refuses a form posted from another origin: when the browser
// sends Origin (every current one does on POST), it must be this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	return o == "http://"+r.Host || o == "https://"+r.Host
}
