package gatehouse

import (
	"context"
	"slices"
	"time"
)

// API key scopes: what a key may be used for. A key acts as its Subject,
// so within a scope it may do what that subject may (an admin scope on a
// key of a non-admin subject grants nothing).
const (
	// ScopeAuthZEN: the AuthZEN evaluation and search endpoints.
	ScopeAuthZEN = "authzen"
	// ScopeCheck: the native decision endpoints (check, explain, effective).
	ScopeCheck = "check"
	// ScopeAdmin: the administration endpoints.
	ScopeAdmin = "admin"
	// ScopeMCP: the MCP gateway (/mcp).
	ScopeMCP = "mcp"
	// ScopeChat: the chat gateway (/ws, /api/v1/threads, attachments).
	ScopeChat = "chat"
)

// Scopes lists every scope.
var Scopes = []string{ScopeAuthZEN, ScopeCheck, ScopeAdmin, ScopeMCP, ScopeChat}

// APIKey is a service credential. The secret is shown once, when the key is
// issued; the store keeps only its SHA-256 (the secret is 256 random bits,
// so a fast hash is safe). A key is valid until RevokedAt or ExpiresAt.
type APIKey struct {
	ID      string     `json:"id"`
	Name    string     `json:"name"`
	Subject SubjectRef `json:"subject"`
	Scopes  []string   `json:"scopes"`
	// Hash is the hex SHA-256 of the secret; never sent to clients.
	Hash      string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// ActiveAt reports whether k may be used at now.
func (k *APIKey) ActiveAt(now time.Time) bool {
	return k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
}

// Allows reports whether k has scope.
func (k *APIKey) Allows(scope string) bool { return slices.Contains(k.Scopes, scope) }

// Validate reports a key that cannot be stored.
func (k *APIKey) Validate() error {
	switch {
	case k.ID == "" || k.Name == "" || k.Hash == "":
		return Invalidf("api key: id, name and hash are required")
	case k.Subject.IsZero():
		return Invalidf("api key %s: no subject", k.ID)
	case len(k.Scopes) == 0:
		return Invalidf("api key %s: no scope", k.ID)
	case k.CreatedAt.IsZero():
		return Invalidf("api key %s: no creation time", k.ID)
	}
	for _, s := range k.Scopes {
		if !slices.Contains(Scopes, s) {
			return Invalidf("api key %s: unknown scope %q", k.ID, s)
		}
	}
	return nil
}

// APIKeyStore keeps API keys. Each write is one transaction together with
// its audit event.
type APIKeyStore interface {
	// CreateAPIKey stores k; an existing id is ErrConflict.
	CreateAPIKey(ctx context.Context, k APIKey, event AuditEvent) error
	// APIKey returns the key with id, revoked or not; ErrNotFound if none.
	APIKey(ctx context.Context, id string) (APIKey, error)
	// ListAPIKeys returns every key, sorted by id.
	ListAPIKeys(ctx context.Context) ([]APIKey, error)
	// RevokeAPIKey sets the key's RevokedAt to at; ErrNotFound if none,
	// and revoking a revoked key changes nothing (and records nothing).
	RevokeAPIKey(ctx context.Context, id string, at time.Time, event AuditEvent) error
}
