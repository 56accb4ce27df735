package server

import (
	"crypto/subtle"
	"fmt"
	"net/http"
)

// Actions on a repository, as the Docker token protocol names them in scopes.
const (
	ActionPull   = "pull"
	ActionPush   = "push"
	ActionDelete = "delete"
	// ActionCatalog is the action on the registry itself (Type "registry", Name
	// "catalog") that listing repositories asks for.
	ActionCatalog = "*"
)

// Access is one thing a request asks to do: actions on a resource, as a scope of the
// Docker token protocol says "repository:team/app:pull,push".
type Access struct {
	// Type is "repository", or "registry" for the catalog.
	Type string
	// Name is the repository's name, or "catalog".
	Name string
	// Actions are ActionPull, ActionPush, ActionDelete (or ActionCatalog).
	Actions []string
}

// Scope returns the access as a token scope: "repository:team/app:pull,push".
func (a Access) Scope() string {
	s := a.Type + ":" + a.Name + ":"
	for i, act := range a.Actions {
		if i > 0 {
			s += ","
		}
		s += act
	}
	return s
}

// Authorizer decides whether a request may do what it asks. The server calls it for every
// request but the rate limit's refusals, before it reads the body, with the accesses the
// request needs: none for the /v2/ ping (which asks only who the caller is), one for most
// calls, two for a cross-repository mount (push on the target, pull on the source). It
// returns nil to allow, a *ChallengeError to ask for credentials (401), or an error that
// matches ErrDenied (or any other error) to refuse (403 DENIED). It is called from many
// goroutines at once. The request it is given is the one, context included, that the
// Quota, the catalog filter and the event hook get for the same call, so that what the
// Authorizer learned of the caller can go on in the request's context.
type Authorizer interface {
	Authorize(r *http.Request, access []Access) error
}

// AuthorizerFunc adapts a function to an Authorizer.
type AuthorizerFunc func(r *http.Request, access []Access) error

// Authorize calls f.
func (f AuthorizerFunc) Authorize(r *http.Request, access []Access) error { return f(r, access) }

// AllowAll is the default Authorizer: it allows everything to everyone.
var AllowAll Authorizer = AuthorizerFunc(func(*http.Request, []Access) error { return nil })

// BasicAuth returns an Authorizer that allows everything to the users it knows, whose
// passwords it is given in clear (it is for tests and private single-user servers), and
// challenges anyone else with `Basic realm="<realm>"`.
func BasicAuth(realm string, users map[string]string) Authorizer {
	copied := make(map[string]string, len(users))
	for u, p := range users {
		copied[u] = p
	}
	challenge := fmt.Sprintf("Basic realm=%q", realm)
	return AuthorizerFunc(func(r *http.Request, _ []Access) error {
		u, p, ok := r.BasicAuth()
		if ok {
			if want, known := copied[u]; known && subtle.ConstantTimeCompare([]byte(p), []byte(want)) == 1 {
				return nil
			}
		}
		return &ChallengeError{Challenge: challenge}
	})
}
