package http

import (
	"net/http"
	"strings"

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
	h := s.mcpAuthenticated(s.cfg.MCP)
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

func (s *Server) handleResourceMetadata(w http.ResponseWriter, r *http.Request) {
	doc := protectedResource{Resource: s.baseURL(r) + mcpPath, BearerMethodsSupported: []string{"header"},
		ScopesSupported: []string{"mcp"}, ResourceName: "Gatehouse MCP gateway"}
	if s.cfg.JWTIssuer != "" {
		doc.AuthorizationServers = []string{s.cfg.JWTIssuer}
	}
	w.Header().Set("Cache-Control", "max-age=300")
	s.writeJSON(w, r, http.StatusOK, doc)
}
