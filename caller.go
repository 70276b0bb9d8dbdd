package gatehouse

import (
	"context"
	"slices"
)

// Credential says how a caller proved who it is. It decides who the
// caller may ask about (see Caller.PEP): a policy enforcement point asks
// about anyone, anyone else about itself.
type Credential string

// Credentials.
const (
	// CredentialToken is a bearer JWT of a user or agent.
	CredentialToken Credential = "token"
	// CredentialAPIKey is a Gatehouse API key; Caller.Scopes are its scopes.
	CredentialAPIKey Credential = "api_key"
	// CredentialSharedToken is one of the operator's shared AuthZEN tokens:
	// only policy enforcement points hold one.
	CredentialSharedToken Credential = "shared_token"
	// CredentialOpen is no credential, on AuthZEN endpoints the operator
	// opened (--authzen-auth none) to trusted enforcement points only.
	CredentialOpen Credential = "open"
	// CredentialOperator is the operator at the command line, who can read
	// and write the database anyway.
	CredentialOperator Credential = "operator"
)

// Caller is who asks a question of Gatehouse or asks it for a change, and
// with which credential. Subject is zero for a shared token or an open
// endpoint.
type Caller struct {
	Subject    SubjectRef `json:"subject,omitzero"`
	Credential Credential `json:"credential"`
	// Scopes are an API key's scopes.
	Scopes []string `json:"scopes,omitempty"`
	// Tenant is the tenant the caller's token is for (a JWT's tenant
	// claim): the default of a route that needs a tenant when the request
	// names none.
	Tenant string `json:"tenant,omitempty"`
}

// Operator is the caller at the command line.
var Operator = Caller{Credential: CredentialOperator}

// PEP reports whether the credential itself is a policy enforcement
// point's: a shared AuthZEN token, an open endpoint, the operator, or an API
// key with the authzen scope. Such a caller may ask about any subject; a
// caller whose subject administers Gatehouse may too (the service decides
// that from the policy).
func (c Caller) PEP() bool {
	switch c.Credential {
	case CredentialSharedToken, CredentialOpen, CredentialOperator:
		return true
	case CredentialAPIKey:
		return slices.Contains(c.Scopes, ScopeAuthZEN)
	}
	return false
}

type callerKey struct{}

// NewContext returns ctx carrying caller.
func NewContext(ctx context.Context, caller Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, caller)
}

// CallerFromContext returns the caller ctx carries, if any.
func CallerFromContext(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}
