package http

import (
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
)

// API keys for services: issued by admins, shown once, stored hashed,
// scoped, revocable.

type apiKeyRequest struct {
	Name string `json:"name" required:"true"`
	// Subject is who the key acts as: "agent:ID", "user:EMAIL" or an email.
	Subject string   `json:"subject" required:"true"`
	Scopes  []string `json:"scopes" required:"true" description:"authzen, check and/or admin"`
	// ExpiresIn is a Go duration such as "720h"; empty means until revoked.
	ExpiresIn string `json:"expires_in,omitempty"`
}

type apiKeyIssued struct {
	// Token is the credential, shown only in this response.
	Token string           `json:"token"`
	Key   gatehouse.APIKey `json:"key"`
}

type apiKeyList struct {
	Items []gatehouse.APIKey `json:"items"`
}

func (s *Server) apiKeyRoutes(mux *http.ServeMux) {
	s.route(mux, http.MethodPost, "/api/v1/api-keys", s.authenticated(s.handleIssueKey),
		apiDoc("issue_api_key", "Issue an API key; its token is in this response only", new(apiKeyRequest), new(apiKeyIssued)).
			withStatus(http.StatusCreated).tagged("admin"))
	s.route(mux, http.MethodGet, "/api/v1/api-keys", s.authenticated(s.handleListKeys),
		apiDoc("list_api_keys", "List the API keys, without secrets", nil, new(apiKeyList)).tagged("admin"))
	s.route(mux, http.MethodDelete, "/api/v1/api-keys/{id}", s.authenticated(s.handleRevokeKey),
		apiDoc("revoke_api_key", "Revoke an API key", nil, nil).withParams(new(idPath)).withStatus(http.StatusNoContent).tagged("admin"))
}

func (s *Server) handleIssueKey(w http.ResponseWriter, r *http.Request) {
	if err := s.requireAdmin(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in apiKeyRequest
	if err := decodeStrict(body, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	subject, err := gatehouse.ParseSubject(in.Subject)
	if err != nil {
		s.writeError(w, r, invalid("error.bad_subject", map[string]any{"Field": "subject"}).wrap(err))
		return
	}
	var ttl time.Duration
	if in.ExpiresIn != "" {
		if ttl, err = time.ParseDuration(in.ExpiresIn); err != nil || ttl <= 0 {
			s.writeError(w, r, invalid("error.bad_duration", map[string]any{"Field": "expires_in"}).wrap(err))
			return
		}
	}
	token, k, err := s.svc.IssueAPIKey(r.Context(), s.actor(r), in.Name, subject, in.Scopes, ttl)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	s.writeJSON(w, r, http.StatusCreated, apiKeyIssued{Token: token, Key: k})
}

func (s *Server) handleListKeys(w http.ResponseWriter, r *http.Request) {
	if err := s.requireAdmin(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	keys, err := s.svc.APIKeys(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, apiKeyList{Items: keys})
}

func (s *Server) handleRevokeKey(w http.ResponseWriter, r *http.Request) {
	if err := s.requireAdmin(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	if err := s.svc.RevokeAPIKey(r.Context(), s.actor(r), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.apiKeys.forget(id)
	w.WriteHeader(http.StatusNoContent)
}
