package hub

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/opendao/dao/registry/server"
)

// Kinds of callers.
const (
	kindAnonymous = iota
	kindUser
	kindRobot
)

// principal is who a request comes from, as the state knew it when it was identified.
type principal struct {
	kind  int
	name  string
	admin bool
	robot *robotRecord
}

func (p principal) String() string {
	switch p.kind {
	case kindUser:
		return "user " + p.name
	case kindRobot:
		return "robot account " + p.name
	}
	return "an anonymous caller"
}

// identity is the result of reading a request's credentials.
type identity struct {
	who principal
	// token is the verified access token the request carried, nil with basic auth or
	// none: a token caps what the request may do at its access claim.
	token *parsedClaims
	// err is why the credentials were refused; then who is anonymous.
	err error
	// sent reports whether the request carried credentials at all.
	sent bool
}

type identityKey struct{}

func withIdentity(ctx context.Context, id identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// requestIdentity returns the identity Handler read, or reads it.
func (h *Hub) requestIdentity(r *http.Request) identity {
	if id, ok := r.Context().Value(identityKey{}).(identity); ok {
		return id
	}
	return h.identify(r)
}

// identify reads a request's Authorization: a Bearer token of the hub, basic auth of a
// user or robot, or none.
func (h *Hub) identify(r *http.Request) identity {
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return identity{}
	}
	scheme, cred, _ := strings.Cut(authz, " ")
	switch strings.ToLower(scheme) {
	case "bearer":
		c, err := h.signer.verify(strings.TrimSpace(cred), false)
		if err != nil {
			return identity{err: err, sent: true}
		}
		who, err := h.principalOf(c.Subject)
		if err != nil {
			return identity{err: err, sent: true}
		}
		return identity{who: who, token: c, sent: true}
	case "basic":
		user, pass, ok := r.BasicAuth()
		if !ok {
			return identity{err: fmt.Errorf("%w: malformed basic credentials", ErrUnauthenticated), sent: true}
		}
		who, err := h.login(user, pass)
		return identity{who: who, err: err, sent: true}
	}
	return identity{err: fmt.Errorf("%w: unknown authorization scheme %q", ErrUnauthenticated, scheme), sent: true}
}

// principalOf returns the account a token names, as it is now: a token of an account
// deleted since is refused.
func (h *Hub) principalOf(subject string) (principal, error) {
	if subject == "" {
		return principal{}, nil
	}
	st := h.state()
	if strings.HasPrefix(subject, RobotPrefix) {
		r, ok := st.Robots[subject]
		if !ok {
			return principal{}, fmt.Errorf("%w: robot account %s no longer exists", ErrInvalidToken, subject)
		}
		if !r.ExpiresAt.IsZero() && !h.now().Before(r.ExpiresAt) {
			return principal{}, fmt.Errorf("%w: robot account %s expired", ErrInvalidToken, subject)
		}
		return principal{kind: kindRobot, name: subject, robot: r}, nil
	}
	u, ok := st.Users[subject]
	if !ok {
		return principal{}, fmt.Errorf("%w: user %s no longer exists", ErrInvalidToken, subject)
	}
	return principal{kind: kindUser, name: subject, admin: u.SystemAdmin}, nil
}

// login checks a user's password or a robot's secret.
func (h *Hub) login(name, secret string) (principal, error) {
	refused := fmt.Errorf("%w: wrong user name or password", ErrUnauthenticated)
	st := h.state()
	if strings.HasPrefix(name, RobotPrefix) {
		r, ok := st.Robots[name]
		sum := sha256.Sum256([]byte(secret))
		if !ok || subtle.ConstantTimeCompare(sum[:], r.SecretHash) != 1 {
			return principal{}, refused
		}
		if !r.ExpiresAt.IsZero() && !h.now().Before(r.ExpiresAt) {
			return principal{}, fmt.Errorf("%w: robot account %s expired", ErrUnauthenticated, name)
		}
		return principal{kind: kindRobot, name: name, robot: r}, nil
	}
	u, ok := st.Users[name]
	if !ok {
		// Spend the time a check would, so that names cannot be told apart by it.
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(secret))
		return principal{}, refused
	}
	if !h.basic.check(name, secret, u.Hash) {
		return principal{}, refused
	}
	return principal{kind: kindUser, name: name, admin: u.SystemAdmin}, nil
}

// dummyHash is a bcrypt hash to compare with for an unknown user.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("not a password of anyone"), bcrypt.MinCost)

// basicCache remembers the passwords bcrypt accepted lately, so that a client sending
// basic auth with every request does not pay for a bcrypt comparison each time. It keys
// on a hash of the name, password and stored hash, so a changed password misses.
type basicCache struct {
	mu sync.Mutex
	ok map[[32]byte]time.Time
}

// basicCacheTTL and basicCacheSize bound what the cache keeps.
const (
	basicCacheTTL  = 5 * time.Minute
	basicCacheSize = 4096
)

func (c *basicCache) check(name, password string, hash []byte) bool {
	k := sha256.Sum256([]byte(name + "\x00" + password + "\x00" + string(hash)))
	now := time.Now()
	c.mu.Lock()
	t, hit := c.ok[k]
	c.mu.Unlock()
	if hit && now.Sub(t) < basicCacheTTL {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false
	}
	c.mu.Lock()
	if c.ok == nil || len(c.ok) >= basicCacheSize {
		c.ok = map[[32]byte]time.Time{}
	}
	c.ok[k] = now
	c.mu.Unlock()
	return true
}

// allowed returns the actions who may do on repo now: pull for anyone on a public
// project, a member's role's actions, a robot's permissions that match, everything for
// a system admin. A repository outside every project allows nothing.
func allowed(st *state, who principal, repo string) []string {
	p, ok := st.Projects[projectOf(repo)]
	if !ok {
		return nil
	}
	var acts []string
	if p.Public {
		acts = []string{server.ActionPull}
	}
	switch who.kind {
	case kindUser:
		if who.admin {
			return repositoryActions
		}
		acts = union(acts, p.Members[who.name].Actions())
	case kindRobot:
		for _, perm := range who.robot.Permissions {
			if perm.matches(repo) {
				acts = union(acts, perm.Actions)
			}
		}
	}
	return acts
}

// permits reports whether who may do all of a now.
func permits(st *state, who principal, a server.Access) bool {
	switch a.Type {
	case "repository":
		have := allowed(st, who, a.Name)
		for _, act := range a.Actions {
			if !containsAction(have, act) {
				return false
			}
		}
		return true
	case "registry":
		// Anyone may list the catalog: it shows only what the caller may pull.
		return a.Name == "catalog" && len(a.Actions) == 1 && a.Actions[0] == server.ActionCatalog
	}
	return false
}

func containsAction(list []string, a string) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// grant returns what of asked who may have: for each access, the actions asked that it
// may do, and none that it asked not; accesses left with no action are left out.
func grant(st *state, who principal, asked []server.Access) []server.Access {
	var out []server.Access
	for _, a := range asked {
		var acts []string
		switch a.Type {
		case "repository":
			if server.ValidateRepository(a.Name) != nil {
				continue
			}
			acts = intersect(a.Actions, allowed(st, who, a.Name))
		case "registry":
			if a.Name == "catalog" {
				acts = intersect(a.Actions, []string{server.ActionCatalog})
			}
		}
		if len(acts) == 0 {
			continue
		}
		merged := false
		for i := range out {
			if out[i].Type == a.Type && out[i].Name == a.Name {
				out[i].Actions = union(out[i].Actions, acts)
				merged = true
			}
		}
		if !merged {
			out = append(out, server.Access{Type: a.Type, Name: a.Name, Actions: acts})
		}
	}
	return out
}

// Authorizer returns the hub's server.Authorizer: it allows a request whose caller may do
// all it needs (by a Bearer token of the hub, which must also grant it, by basic auth of
// a user or robot, or anonymously for pulls of public projects); it answers a caller
// with no or refused credentials, or a token that grants too little, with a Bearer
// challenge for the scope the request needs; and it denies (403) an authenticated caller
// who may not. Handler installs it.
func (h *Hub) Authorizer() server.Authorizer {
	return server.AuthorizerFunc(h.authorize)
}

func (h *Hub) authorize(r *http.Request, need []server.Access) error {
	id := h.requestIdentity(r)
	if id.err != nil {
		code := "invalid_token"
		if id.token == nil && !strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "bearer") {
			code = ""
		}
		return h.challenge(r, need, code, id.err.Error())
	}
	if len(need) == 0 {
		if !id.sent {
			return h.challenge(r, nil, "", "")
		}
		return nil
	}
	st := h.state()
	for _, a := range need {
		if !permits(st, id.who, a) {
			if id.who.kind == kindAnonymous {
				return h.challenge(r, need, "", "")
			}
			return denied("%s may not %s %s", id.who, strings.Join(a.Actions, ","), a.Name)
		}
	}
	if id.token != nil && !covers(id.token.Access, need) {
		return h.challenge(r, need, "insufficient_scope", "the token does not grant "+scopes(need))
	}
	return nil
}

// scopes returns the challenge scope of accesses: a push asks for pull too, as clients
// ask and distribution challenges.
func scopes(need []server.Access) string {
	var out []string
	for _, a := range need {
		acts := a.Actions
		if containsAction(acts, server.ActionPush) && !containsAction(acts, server.ActionPull) {
			acts = append([]string{server.ActionPull}, acts...)
		}
		out = append(out, server.Access{Type: a.Type, Name: a.Name, Actions: acts}.Scope())
	}
	return strings.Join(out, " ")
}

// realm returns the token endpoint's URL.
func (h *Hub) realm(r *http.Request) string {
	if h.cfg.URL != "" {
		return h.cfg.URL + "/token"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/token"
}

// challenge asks for a token for need.
func (h *Hub) challenge(r *http.Request, need []server.Access, code, msg string) error {
	c := fmt.Sprintf("Bearer realm=%q,service=%q", h.realm(r), h.cfg.Service)
	if s := scopes(need); s != "" {
		c += fmt.Sprintf(",scope=%q", s)
	}
	if code != "" {
		c += fmt.Sprintf(",error=%q", code)
	}
	return &server.ChallengeError{Challenge: c, Message: strings.TrimPrefix(msg, "hub: ")}
}

// catalogVisible keeps in the catalog the repositories the caller may pull.
func (h *Hub) catalogVisible(r *http.Request, repo string) bool {
	id := h.requestIdentity(r)
	if id.err != nil {
		return false
	}
	return containsAction(allowed(h.state(), id.who, repo), server.ActionPull)
}
