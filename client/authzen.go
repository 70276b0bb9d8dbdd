package client

import (
	"context"
	"iter"
	"net/http"

	"github.com/gatehouse/gatehouse"
)

// Evaluations semantics (AuthZEN options.evaluations_semantic).
const (
	SemanticExecuteAll          = "execute_all"
	SemanticDenyOnFirstDeny     = "deny_on_first_deny"
	SemanticPermitOnFirstPermit = "permit_on_first_permit"
)

// Subject is an AuthZEN subject: a user (Type "user", ID an email or one of
// the user's aliases) or an agent. Properties reach CEL conditions as
// subject.properties; "on_behalf_of" names the user an agent acts for.
type Subject struct {
	Type       gatehouse.SubjectType `json:"type"`
	ID         string                `json:"id,omitempty"`
	Properties map[string]any        `json:"properties,omitempty"`
}

// User is the AuthZEN subject of the user with email (or alias).
func User(email string) Subject { return Subject{Type: gatehouse.SubjectUser, ID: email} }

// Agent is the AuthZEN subject of the agent id acting for the user with
// email onBehalfOf ("" for none).
func Agent(id, onBehalfOf string) Subject {
	s := Subject{Type: gatehouse.SubjectAgent, ID: id}
	if onBehalfOf != "" {
		s.Properties = map[string]any{"on_behalf_of": gatehouse.User(onBehalfOf).String()}
	}
	return s
}

// Action is an AuthZEN action: Name is a tool or permission name.
type Action struct {
	Name       string         `json:"name"`
	Properties map[string]any `json:"properties,omitempty"`
}

// Tenant is the AuthZEN resource of a tenant: a decision in that tenant.
func Tenant(id string) gatehouse.Resource {
	return gatehouse.Resource{Type: gatehouse.ResourceTypeTenant, ID: id}
}

// AccessRequest is one AuthZEN access evaluation. In a batch, a zero
// Subject, Action or Resource (or nil Context) takes the batch's default.
type AccessRequest struct {
	Subject  Subject            `json:"subject,omitzero"`
	Action   Action             `json:"action,omitzero"`
	Resource gatehouse.Resource `json:"resource,omitzero"`
	Context  map[string]any     `json:"context,omitempty"`
}

// Decision is an AuthZEN decision. A deny is not an error: Allowed is false
// and Reason says why (permission_missing, plan_required with Plan, …).
type Decision struct {
	Allowed bool
	Reason  gatehouse.Reason
	// Message is the reason in the language Accept-Language picked.
	Message string
	// Version is the policy version that decided.
	Version int64
	// Plan is the lowest plan that unlocks Feature (plan_required).
	Plan    string
	Feature string
	// DeniedSubject ("user:EMAIL" or "agent:ID") is who was denied when an
	// agent acts for a user; DeniedPermission what a denial is about.
	DeniedSubject    string
	DeniedPermission string
	// Error is set for a malformed item of a batch (reason invalid_request).
	Error *Error
}

// decisionJSON is a decision as the server writes it.
type decisionJSON struct {
	Decision bool `json:"decision"`
	Context  struct {
		Reason           gatehouse.Reason `json:"reason"`
		Message          string           `json:"message"`
		Version          int64            `json:"version"`
		Plan             string           `json:"plan"`
		Feature          string           `json:"feature"`
		DeniedSubject    string           `json:"denied_subject"`
		DeniedPermission string           `json:"denied_permission"`
		Error            *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"context"`
}

func (d *decisionJSON) decision() Decision {
	c := &d.Context
	out := Decision{Allowed: d.Decision, Reason: c.Reason, Message: c.Message, Version: c.Version,
		Plan: c.Plan, Feature: c.Feature, DeniedSubject: c.DeniedSubject, DeniedPermission: c.DeniedPermission}
	if c.Error != nil {
		out.Error = &Error{StatusCode: http.StatusOK, Code: c.Error.Code, Message: c.Error.Message}
	}
	return out
}

// Evaluate decides one access request (POST /access/v1/evaluation). A
// request the server cannot parse is an *Error with code invalid.
func (c *Client) Evaluate(ctx context.Context, req AccessRequest) (Decision, error) {
	var out decisionJSON
	if err := c.call(ctx, request{method: http.MethodPost, path: "/access/v1/evaluation", body: req}, &out); err != nil {
		return Decision{}, err
	}
	return out.decision(), nil
}

// BatchRequest is an AuthZEN access evaluations request: Defaults fills what
// an item leaves zero, and Semantic (default SemanticExecuteAll) says
// whether to stop at the first deny or permit.
type BatchRequest struct {
	Defaults    AccessRequest
	Evaluations []AccessRequest
	Semantic    string
}

// batchJSON is a BatchRequest on the wire.
type batchJSON struct {
	AccessRequest
	Options     *batchOptions   `json:"options,omitempty"`
	Evaluations []AccessRequest `json:"evaluations"`
}

type batchOptions struct {
	Semantic string `json:"evaluations_semantic"`
}

// Evaluations decides a batch in one request (POST /access/v1/evaluations)
// on one policy snapshot. It returns the decisions in request order: all of
// them, or up to and including the one that stopped a short-circuiting
// semantic. An empty batch is gatehouse.ErrInvalid.
func (c *Client) Evaluations(ctx context.Context, b BatchRequest) ([]Decision, error) {
	if len(b.Evaluations) == 0 {
		return nil, gatehouse.Invalidf("client: a batch needs at least one evaluation")
	}
	in := batchJSON{AccessRequest: b.Defaults, Evaluations: b.Evaluations}
	if b.Semantic != "" {
		in.Options = &batchOptions{Semantic: b.Semantic}
	}
	var out struct {
		Evaluations []decisionJSON `json:"evaluations"`
	}
	if err := c.call(ctx, request{method: http.MethodPost, path: "/access/v1/evaluations", body: in}, &out); err != nil {
		return nil, err
	}
	ds := make([]Decision, len(out.Evaluations))
	for i := range out.Evaluations {
		ds[i] = out.Evaluations[i].decision()
	}
	return ds, nil
}

// SearchRequest is an AuthZEN search. The searched-for entity needs only
// its type (a subject search's Subject.Type, a resource search's
// Resource.Type); an action search ignores Action. PageSize is the number
// of results per request (0: the server's default of 100).
type SearchRequest struct {
	Subject  Subject
	Action   Action
	Resource gatehouse.Resource
	Context  map[string]any
	PageSize int
}

// SearchTarget is what a search looks for.
type SearchTarget string

// Search targets: the path segment of each Search API.
const (
	SearchSubjects  SearchTarget = "subject"
	SearchResources SearchTarget = "resource"
	SearchActions   SearchTarget = "action"
)

// SearchResult is one result: a subject or resource (Type, ID) or an
// action (Name).
type SearchResult struct {
	Type string `json:"type,omitempty"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// SearchPage is one page of a search.
type SearchPage struct {
	Results []SearchResult
	// NextToken continues the search; "" on the last page.
	NextToken string
	// Version is the policy version that decided the page.
	Version int64
}

// searchJSON is a SearchRequest on the wire.
type searchJSON struct {
	Subject  Subject            `json:"subject,omitzero"`
	Action   Action             `json:"action,omitzero"`
	Resource gatehouse.Resource `json:"resource,omitzero"`
	Context  map[string]any     `json:"context,omitempty"`
	Page     *pageJSON          `json:"page,omitempty"`
}

type pageJSON struct {
	Limit int    `json:"limit,omitempty"`
	Token string `json:"token,omitempty"`
}

// Search fetches one page of a search (POST /access/v1/search/{target});
// token is the previous page's NextToken, "" for the first page. A token
// of another search is an *Error with code invalid.
func (c *Client) Search(ctx context.Context, target SearchTarget, req SearchRequest, token string) (SearchPage, error) {
	in := searchJSON{Subject: req.Subject, Action: req.Action, Resource: req.Resource, Context: req.Context}
	if target == SearchActions {
		in.Action = Action{}
	}
	if req.PageSize > 0 || token != "" {
		in.Page = &pageJSON{Limit: req.PageSize, Token: token}
	}
	var out struct {
		Page struct {
			NextToken string `json:"next_token"`
		} `json:"page"`
		Context struct {
			Version int64 `json:"version"`
		} `json:"context"`
		Results []SearchResult `json:"results"`
	}
	if err := c.call(ctx, request{method: http.MethodPost, path: "/access/v1/search/" + string(target), body: in}, &out); err != nil {
		return SearchPage{}, err
	}
	return SearchPage{Results: out.Results, NextToken: out.Page.NextToken, Version: out.Context.Version}, nil
}

// searchAll yields every result of a search, fetching pages as the loop
// asks for more. An error ends the sequence after yielding it.
func (c *Client) searchAll(ctx context.Context, target SearchTarget, req SearchRequest) iter.Seq2[SearchResult, error] {
	return func(yield func(SearchResult, error) bool) {
		token := ""
		for {
			page, err := c.Search(ctx, target, req, token)
			if err != nil {
				yield(SearchResult{}, err)
				return
			}
			for _, r := range page.Results {
				if !yield(r, nil) {
					return
				}
			}
			if page.NextToken == "" {
				return
			}
			token = page.NextToken
		}
	}
}

// SearchSubjects yields every subject of type req.Subject.Type allowed
// req.Action on req.Resource, in id order, page by page.
func (c *Client) SearchSubjects(ctx context.Context, req SearchRequest) iter.Seq2[Subject, error] {
	return func(yield func(Subject, error) bool) {
		for r, err := range c.searchAll(ctx, SearchSubjects, req) {
			if !yield(Subject{Type: gatehouse.SubjectType(r.Type), ID: r.ID}, err) {
				return
			}
		}
	}
}

// SearchResources yields every resource of type req.Resource.Type on which
// req.Subject may perform req.Action, in id order, page by page.
func (c *Client) SearchResources(ctx context.Context, req SearchRequest) iter.Seq2[gatehouse.Resource, error] {
	return func(yield func(gatehouse.Resource, error) bool) {
		for r, err := range c.searchAll(ctx, SearchResources, req) {
			if !yield(gatehouse.Resource{Type: r.Type, ID: r.ID}, err) {
				return
			}
		}
	}
}

// SearchActions yields every action (permission or tool name) req.Subject
// may perform on req.Resource, in name order, page by page.
func (c *Client) SearchActions(ctx context.Context, req SearchRequest) iter.Seq2[Action, error] {
	return func(yield func(Action, error) bool) {
		for r, err := range c.searchAll(ctx, SearchActions, req) {
			if !yield(Action{Name: r.Name}, err) {
				return
			}
		}
	}
}
