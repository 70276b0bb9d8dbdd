package http

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/swaggest/openapi-go"
	"github.com/swaggest/openapi-go/openapi31"

	"github.com/gatehouse/gatehouse"
)

// endpoint is one route: what the mux serves, and what the OpenAPI
// document says about it.
type endpoint struct {
	method, path string
	op           operation
}

// Security schemes of the OpenAPI document.
const (
	securityBearer  = "bearer"
	securityAuthZEN = "authzen"
)

// operation documents an endpoint. params holds path and query parameters
// (swaggest `path:`/`query:` tags), body the JSON request body, resp the
// success response; nil means none.
type operation struct {
	id, summary, tag string
	security         string
	params, body     any
	resp             any
	// status is the success status; 0 means 200.
	status int
	// contentType is the success response's type when it is not JSON.
	contentType string
	// scope is the API key scope the route needs (gatehouse.Scope…); an
	// API key is refused on a route that declares none.
	scope string
}

func (o operation) public() operation                { o.security = ""; return o }
func (o operation) tagged(tag string) operation      { o.tag = tag; return o }
func (o operation) withParams(params any) operation  { o.params = params; return o }
func (o operation) withStatus(status int) operation  { o.status = status; return o }
func (o operation) withScope(scope string) operation { o.scope = scope; return o }

// apiDoc documents a native /api/v1 endpoint behind a bearer token; an API
// key needs the admin scope unless the route declares another (withScope).
func apiDoc(id, summary string, body, resp any) operation {
	return operation{id: id, summary: summary, tag: "api", security: securityBearer, body: body, resp: resp, scope: gatehouse.ScopeAdmin}
}

// authzenDoc documents an AuthZEN endpoint, at the root or scoped to a
// tenant (whose variant takes the tenant as a path parameter).
func authzenDoc(id, summary string, scoped bool, body, resp any) operation {
	o := operation{id: id, summary: summary, tag: "authzen", security: securityAuthZEN, body: body, resp: resp, scope: gatehouse.ScopeAuthZEN}
	if scoped {
		o.id += "InTenant"
		o.summary += ", scoped to a tenant's subtree"
		o.params = new(tenantPath)
	}
	return o
}

// openAPI builds the OpenAPI 3.1 document of s.endpoints. Building it is
// deterministic; a failure is a programming error in a route's
// documentation, so the document then says so instead of failing startup.
func (s *Server) openAPI() []byte {
	r := openapi31.NewReflector()
	r.Spec.Info.WithTitle("Gatehouse").WithVersion("1").
		WithDescription("Permissions and guardrails for AI assistants: the OpenID AuthZEN 1.0 API and the native REST API. " +
			"Errors are {\"error\": {\"code\", \"message\", \"reason\", \"details\"}} with the status of the error table.")
	r.SpecEns().SetHTTPBearerTokenSecurity(securityBearer, "JWT", "A bearer JWT (HS256) naming the caller in sub")
	r.SpecEns().SetHTTPBearerTokenSecurity(securityAuthZEN, "", "As --authzen-auth says: a bearer JWT, a shared token, or none")
	for _, e := range s.endpoints {
		if err := addOperation(r, e); err != nil {
			b, _ := json.Marshal(map[string]string{"error": err.Error()})
			return b
		}
	}
	b, err := json.MarshalIndent(r.Spec, "", "  ")
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	return append(b, '\n')
}

func addOperation(r *openapi31.Reflector, e endpoint) error {
	oc, err := r.NewOperationContext(e.method, e.path)
	if err != nil {
		return err
	}
	op := e.op
	if op.id != "" {
		oc.SetID(op.id)
	}
	oc.SetSummary(op.summary)
	if op.scope != "" && op.security != "" {
		oc.SetDescription("An API key needs the " + op.scope + " scope.")
	}
	if op.tag != "" {
		oc.SetTags(op.tag)
	}
	if op.security != "" {
		oc.AddSecurity(op.security)
	}
	if op.params != nil {
		oc.AddReqStructure(op.params)
	}
	if op.body != nil {
		oc.AddReqStructure(op.body, openapi.WithContentType("application/json"))
	}
	status := op.status
	if status == 0 {
		status = http.StatusOK
	}
	switch {
	case op.contentType != "":
		oc.AddRespStructure(new(string), openapi.WithHTTPStatus(status), openapi.WithContentType(op.contentType))
	case op.resp != nil:
		oc.AddRespStructure(op.resp, openapi.WithHTTPStatus(status))
	default:
		oc.AddRespStructure(nil, openapi.WithHTTPStatus(status))
	}
	oc.AddRespStructure(new(errorBody), func(cu *openapi.ContentUnit) {
		cu.IsDefault = true
		cu.Description = "An error: its code maps to the status (see docs/http.md)"
	})
	if err := r.AddOperation(oc); err != nil {
		return fmt.Errorf("document %s %s: %w", e.method, e.path, err)
	}
	return nil
}

// handleOpenAPI serves the OpenAPI document.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write(s.openapi()); err != nil {
		s.cfg.Logger.Debug("write response", "request_id", requestID(r.Context()), "err", err)
	}
}

// Shapes the OpenAPI document describes that handlers parse by hand: the
// AuthZEN requests, whose decoders ignore unknown members and answer per
// the specification's rules.

type tenantPath struct {
	Tenant string `path:"tenant" description:"the tenant whose subtree this PDP decides for"`
}

type tenantQuery struct {
	Tenant string `query:"tenant" description:"the tenant to answer for; none for a tenant-less answer"`
}

type authzenEntity struct {
	Type       string         `json:"type" required:"true"`
	ID         string         `json:"id" required:"true"`
	Properties map[string]any `json:"properties,omitempty"`
}

type authzenAction struct {
	Name       string         `json:"name" required:"true"`
	Properties map[string]any `json:"properties,omitempty"`
}

type authzenRequest struct {
	Subject  authzenEntity  `json:"subject" required:"true"`
	Action   authzenAction  `json:"action" required:"true"`
	Resource authzenEntity  `json:"resource" required:"true"`
	Context  map[string]any `json:"context,omitempty"`
}

type authzenItem struct {
	Subject  *authzenEntity `json:"subject,omitempty"`
	Action   *authzenAction `json:"action,omitempty"`
	Resource *authzenEntity `json:"resource,omitempty"`
	Context  map[string]any `json:"context,omitempty"`
}

type authzenBatchRequest struct {
	authzenItem
	Options struct {
		EvaluationsSemantic string `json:"evaluations_semantic,omitempty" enum:"execute_all,deny_on_first_deny,permit_on_first_permit"`
	} `json:"options,omitzero"`
	Evaluations []authzenItem `json:"evaluations,omitempty"`
}

type authzenSearchRequest struct {
	authzenItem
	Page struct {
		Token string `json:"token,omitempty"`
		Limit int    `json:"limit,omitempty" minimum:"0"`
	} `json:"page,omitzero"`
}

type batchResponse struct {
	Evaluations []decisionJSON `json:"evaluations"`
}

type statusBody struct {
	Status  string `json:"status"`
	Version int64  `json:"version,omitempty"`
}
