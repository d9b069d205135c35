package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
)

// auth checks bearer tokens. Token values are kept as SHA-256 sums and a
// presented token is compared with every one of them in constant time, so
// neither the length nor the position of a match shows in the timing.
type auth struct {
	tokens []hashedToken
	// openKey signs the UI's CSRF tokens when no tokens are configured.
	openKey [sha256.Size]byte
}

type hashedToken struct {
	name   string
	sum    [sha256.Size]byte
	scopes []string
	// sessionKey signs the web UI's session cookies of this token (see
	// auth_session.go): derived from the token's value, so replicas with the
	// same tokens accept each other's cookies and a changed token ends its
	// sessions.
	sessionKey [sha256.Size]byte
}

func newAuth(tokens []Token) *auth {
	a := &auth{openKey: newOpenKey()}
	for _, t := range tokens {
		a.tokens = append(a.tokens, hashedToken{name: t.Name, sum: sha256.Sum256([]byte(t.Value)), scopes: slices.Clone(t.Scopes),
			sessionKey: sha256.Sum256([]byte("slogate ui session\x00" + t.Value))})
	}
	return a
}

func (a *auth) open() bool { return len(a.tokens) == 0 }

// lookup finds the token whose value is secret, looking at all of them.
func (a *auth) lookup(secret string) (hashedToken, bool) {
	sum := sha256.Sum256([]byte(secret))
	match := 0 // 1 + index of the matching token
	for i := range a.tokens {
		eq := subtle.ConstantTimeCompare(sum[:], a.tokens[i].sum[:])
		match = subtle.ConstantTimeSelect(eq, i+1, match)
	}
	if match == 0 {
		return hashedToken{}, false
	}
	return a.tokens[match-1], true
}

func (t hashedToken) allows(scope string) bool {
	return slices.Contains(t.scopes, scope) || slices.Contains(t.scopes, ScopeAdmin)
}

// credentials reads the token of an Authorization header: "Bearer <token>",
// or with allowBasic the password of "Basic" credentials (Flagger cannot
// set headers, but Go's HTTP client sends a webhook URL's user:password as
// Basic auth).
func credentials(r *http.Request, allowBasic bool) (string, bool) {
	h := r.Header.Get("Authorization")
	if scheme, token, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		token = strings.TrimSpace(token)
		return token, token != ""
	}
	if allowBasic {
		if _, password, ok := r.BasicAuth(); ok && password != "" {
			return password, true
		}
	}
	return "", false
}

func unauthorized(detail, challenge string) *Problem {
	p := newProblem(http.StatusUnauthorized, typeAuth, detail)
	p.header = http.Header{"Www-Authenticate": {challenge}}
	return p
}

// requireScope lets a request through when it carries a token with the
// scope (or admin). With no tokens configured every request passes.
func (a *auth) requireScope(scope string) gin.HandlerFunc {
	return a.require(scope, false)
}

// requireScopeOrBasic is requireScope that also takes the token as the
// password of Basic credentials (for Flagger webhooks).
func (a *auth) requireScopeOrBasic(scope string) gin.HandlerFunc {
	return a.require(scope, true)
}

func (a *auth) require(scope string, allowBasic bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if a.open() {
			return
		}
		secret, ok := credentials(c.Request, allowBasic)
		if !ok && c.Request.Header.Get("Authorization") == "" && readOnly(c.Request.Method) {
			// The web UI's scripts read the API with the session cookie
			// (SameSite=Strict); writes always need a header or a form
			// with its CSRF token.
			if t, _, ok := a.session(c.Request); ok {
				a.authorize(c, t, scope)
				return
			}
		}
		if !ok {
			fail(c, unauthorized("this route needs an Authorization: Bearer <token> header", `Bearer realm="slogate"`))
			return
		}
		t, ok := a.lookup(secret)
		if !ok {
			fail(c, unauthorized("the token is not valid", `Bearer realm="slogate", error="invalid_token"`))
			return
		}
		a.authorize(c, t, scope)
	}
}

// authorize names the principal of the request and refuses a token
// without the scope.
func (a *auth) authorize(c *gin.Context, t hashedToken, scope string) {
	withValue(c, principalKey, t.name)
	if !t.allows(scope) {
		p := newProblem(http.StatusForbidden, typeForbidden, "the token "+t.name+" lacks the scope "+scope)
		p.header = http.Header{"Www-Authenticate": {`Bearer realm="slogate", error="insufficient_scope", scope="` + scope + `"`}}
		fail(c, p)
	}
}

func readOnly(method string) bool { return method == http.MethodGet || method == http.MethodHead }
