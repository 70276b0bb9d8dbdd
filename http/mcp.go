package http

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// mcpPath is the MCP gateway's endpoint.
const mcpPath = "/mcp"

// resourceMetadataPath is where the gateway's OAuth 2.0 protected resource
// metadata is (RFC 9728: the well-known prefix before the resource's path).
const resourceMetadataPath = "/.well-known/oauth-protected-resource" + mcpPath

// protectedResource is the RFC 9728 metadata document of /mcp.
type protectedResource struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ScopesSupported        []string `json:"scopes_supported"`
	ResourceName           string   `json:"resource_name"`
}

// mcpRoutes serves the MCP gateway when one is configured. The caller
// authenticates like any other (a bearer JWT, or an API key with the mcp
// scope); the gateway decides everything else through the service, and
// never forwards the caller's token upstream.
func (s *Server) mcpRoutes(mux *http.ServeMux) {
	if s.cfg.MCP == nil {
		return
	}
	h := s.mcpAuthenticated(s.mcpStreaming(s.cfg.MCP))
	for _, m := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
		s.route(mux, m, mcpPath, h, operation{id: "mcp_" + strings.ToLower(m), summary: "The MCP gateway (Streamable HTTP)",
			tag: "mcp", security: securityBearer, contentType: "application/json", scope: gatehouse.ScopeMCP})
	}
	s.route(mux, http.MethodGet, resourceMetadataPath, http.HandlerFunc(s.handleResourceMetadata),
		operation{id: "mcp_resource_metadata", summary: "OAuth 2.0 protected resource metadata of /mcp (RFC 9728)", tag: "mcp"})
}

// mcpAuthenticated is authenticated for the MCP endpoint: a refused
// caller is told where the resource metadata is, as the MCP authorization
// specification asks.
func (s *Server) mcpAuthenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := s.authenticateAny(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", resource_metadata="`+s.baseURL(r)+resourceMetadataPath+`"`)
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, s.withCaller(r, caller))
	})
}

// mcpStreaming takes /mcp out of the server's ReadTimeout and
// WriteTimeout once the request's body is read: an MCP response may be a
// stream as long-lived as its client (a 2025-11-25 session's GET, a
// 2026-07-28 subscriptions/listen, a call waiting for its user's
// confirmation), which WriteTimeout would cut and an expired read deadline
// would cancel. The body is still read within ReadTimeout and
// MaxBodyBytes, so a slow or oversized one is refused as anywhere else.
func (s *Server) mcpStreaming(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			body, err := s.readMCPBody(w, r)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rc := http.NewResponseController(w)
		for _, lift := range []func(time.Time) error{rc.SetReadDeadline, rc.SetWriteDeadline} {
			if err := lift(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
				s.writeError(w, r, fmt.Errorf("mcp: lift the connection's deadline: %w", err))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// readMCPBody reads an MCP request's body, at most MaxBodyBytes (413).
// Its media type is the MCP SDK's to check.
func (s *Server) readMCPBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	tooLarge := func(err error) error {
		return &Error{Code: CodePayloadTooLarge, Data: map[string]any{"Max": s.cfg.MaxBodyBytes}, Err: err}
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, tooLarge(fmt.Errorf("content length %d", r.ContentLength))
	}
	body, err := readAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), r.ContentLength)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge(err)
	case err != nil:
		return nil, invalid("error.bad_json", nil).wrap(fmt.Errorf("read body: %w", err))
	}
	return body, nil
}

func (s *Server) handleResourceMetadata(w http.ResponseWriter, r *http.Request) {
	doc := protectedResource{Resource: s.baseURL(r) + mcpPath, BearerMethodsSupported: []string{"header"},
		ScopesSupported: []string{"mcp"}, ResourceName: "Gatehouse MCP gateway"}
	if s.cfg.JWTIssuer != "" {
		doc.AuthorizationServers = []string{s.cfg.JWTIssuer}
	}
	w.Header().Set("Cache-Control", "max-age=300")
	s.writeJSON(w, r, http.StatusOK, doc)
}
