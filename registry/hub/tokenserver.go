package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/opendao/dao/registry/server"
)

// tokenResponse is the token endpoint's answer, as the Docker token spec and OAuth2 have
// it.
type tokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// maxTokenForm bounds the body of a token POST.
const maxTokenForm = 64 << 10

// serveToken serves /token: GET with basic auth (or none, for anonymous) and scope
// parameters, as the Docker token spec has it, and POST of the OAuth2 form with the
// password or refresh_token grant, as docker's newer clients send. It grants what was
// asked intersected with what the caller may do.
func (h *Hub) serveToken(w http.ResponseWriter, r *http.Request) {
	var (
		who     principal
		asked   []server.Access
		offline bool
		err     error
	)
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		if err := h.checkService(q.Get("service")); err != nil {
			tokenError(w, http.StatusBadRequest, "invalid_request", err)
			return
		}
		if asked, err = ParseScopes(q["scope"]); err != nil {
			tokenError(w, http.StatusBadRequest, "invalid_scope", err)
			return
		}
		offline = q.Get("offline_token") == "true"
		if u, p, ok := r.BasicAuth(); ok {
			if a := q.Get("account"); a != "" && a != u {
				tokenError(w, http.StatusBadRequest, "invalid_request", fmt.Errorf("%w: account %q is not the user %q who logs in", ErrInvalidOption, a, u))
				return
			}
			if who, err = h.login(u, p); err != nil {
				w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", h.cfg.Service))
				tokenError(w, http.StatusUnauthorized, "invalid_grant", err)
				return
			}
		} else if r.Header.Get("Authorization") != "" {
			tokenError(w, http.StatusUnauthorized, "invalid_client", fmt.Errorf("%w: the token endpoint takes basic auth", ErrUnauthenticated))
			return
		} else if offline {
			tokenError(w, http.StatusUnauthorized, "invalid_request", fmt.Errorf("%w: an offline token needs credentials", ErrUnauthenticated))
			return
		}
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxTokenForm)
		if err := r.ParseForm(); err != nil {
			tokenError(w, http.StatusBadRequest, "invalid_request", err)
			return
		}
		f := r.PostForm
		if err := h.checkService(f.Get("service")); err != nil {
			tokenError(w, http.StatusBadRequest, "invalid_request", err)
			return
		}
		if asked, err = ParseScopes(f["scope"]); err != nil {
			tokenError(w, http.StatusBadRequest, "invalid_scope", err)
			return
		}
		switch f.Get("grant_type") {
		case "password":
			if who, err = h.login(f.Get("username"), f.Get("password")); err != nil {
				tokenError(w, http.StatusUnauthorized, "invalid_grant", err)
				return
			}
			offline = f.Get("access_type") == "offline"
		case "refresh_token":
			c, err := h.signer.verify(f.Get("refresh_token"), true)
			if err == nil {
				who, err = h.principalOf(c.Subject)
			}
			if err != nil {
				tokenError(w, http.StatusUnauthorized, "invalid_grant", err)
				return
			}
		default:
			tokenError(w, http.StatusBadRequest, "unsupported_grant_type", fmt.Errorf("%w: grant_type %q: want password or refresh_token", ErrInvalidOption, f.Get("grant_type")))
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		tokenError(w, http.StatusMethodNotAllowed, "invalid_request", fmt.Errorf("%w: method %s", ErrInvalidOption, r.Method))
		return
	}
	granted := grant(h.state(), who, asked)
	tok, issued, err := h.signer.sign(who.name, granted, false, h.cfg.TokenLifetime)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", err)
		return
	}
	resp := tokenResponse{Token: tok, AccessToken: tok, ExpiresIn: int64(h.cfg.TokenLifetime / time.Second), IssuedAt: issued.UTC().Format(time.RFC3339)}
	if offline && who.kind != kindAnonymous {
		if resp.RefreshToken, _, err = h.signer.sign(who.name, nil, true, h.cfg.RefreshLifetime); err != nil {
			tokenError(w, http.StatusInternalServerError, "server_error", err)
			return
		}
	}
	if r.Method == http.MethodPost {
		resp.Scope = scopes(granted)
	}
	body, _ := json.Marshal(resp)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// checkService refuses a token request for another service; none means the hub's.
func (h *Hub) checkService(s string) error {
	if s != "" && s != h.cfg.Service {
		return fmt.Errorf("%w: service %q: this token server is for %q", ErrInvalidOption, s, h.cfg.Service)
	}
	return nil
}

// tokenError answers an error of the token endpoint: an OAuth2 error, with the
// distribution error list beside it for docker's older clients.
func tokenError(w http.ResponseWriter, status int, code string, err error) {
	var msg string
	if err != nil {
		msg = err.Error()
	}
	spec := "DENIED"
	switch {
	case errors.Is(err, ErrUnauthenticated):
		spec = "UNAUTHORIZED"
	case status == http.StatusBadRequest:
		spec = "UNSUPPORTED"
	case status >= 500:
		spec = "UNKNOWN"
	}
	body, _ := json.Marshal(map[string]any{
		"error": code, "error_description": msg,
		"errors": []map[string]string{{"code": spec, "message": msg}},
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}
