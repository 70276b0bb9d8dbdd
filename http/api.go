package http

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
)

// checkRequest is the body of POST /api/v1/check and /api/v1/explain.
// Subject defaults to the caller; exactly one of Permission and Tool.
type checkRequest struct {
	Subject           string             `json:"subject"`
	OnBehalfOf        string             `json:"on_behalf_of"`
	Permission        string             `json:"permission"`
	Tool              string             `json:"tool"`
	Tenant            string             `json:"tenant"`
	Context           map[string]any     `json:"context"`
	Resource          gatehouse.Resource `json:"resource"`
	SubjectProperties map[string]any     `json:"subject_properties"`
	ActionProperties  map[string]any     `json:"action_properties"`
	// Args are a tool's arguments, for a tool that performs an agent
	// action with limits (amounts as decimal strings or numbers).
	Args json.RawMessage `json:"args" description:"a tool's arguments; amounts as decimal strings or numbers"`
}

func (s *Server) handleCheck(w http.ResponseWriter, r *http.Request)   { s.check(w, r, false) }
func (s *Server) handleExplain(w http.ResponseWriter, r *http.Request) { s.check(w, r, true) }

// check decides a native check request through the service, which
// decides whether the caller may ask about the subject (see
// service.MayAsk) and, for a tool that performs an agent action, steps 6–8
// read-only with the request's args.
func (s *Server) check(w http.ResponseWriter, r *http.Request, explain bool) {
	body, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in checkRequest
	if err := decodeStrict(body, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	caller := callerOf(r)
	q, err := in.question(caller.Subject)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q.Explain, q.Lang, q.RequestID, q.Surface = explain, language(r.Context()), requestID(r.Context()), "check"
	if explain {
		q.Surface = "explain"
	}
	start := time.Now()
	a, err := s.svc.Evaluate(r.Context(), caller, q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.metrics.decided(q.Surface, a.Reason, time.Since(start))
	s.writeJSON(w, r, http.StatusOK, a)
}

// question builds the question, the subject defaulting to caller.
func (in *checkRequest) question(caller gatehouse.SubjectRef) (gatehouse.Question, error) {
	q := gatehouse.Question{Request: gatehouse.Request{
		Subject: caller, Permission: in.Permission, Tenant: in.Tenant, Resource: in.Resource,
		Context: in.Context, SubjectProperties: in.SubjectProperties, ActionProperties: in.ActionProperties,
	}, Tool: in.Tool}
	req := &q.Request
	if in.Subject != "" {
		ref, err := gatehouse.ParseSubject(in.Subject)
		if err != nil {
			return q, invalid("error.bad_subject", map[string]any{"Field": "subject"}).wrap(err)
		}
		req.Subject = ref
	}
	if in.OnBehalfOf != "" {
		ref, err := gatehouse.ParseSubject(in.OnBehalfOf)
		if err != nil {
			return q, invalid("error.bad_subject", map[string]any{"Field": "on_behalf_of"}).wrap(err)
		}
		req.OnBehalfOf = ref
	}
	if (in.Permission == "") == (in.Tool == "") {
		return q, invalid("error.permission_or_tool", nil).wrap(fmt.Errorf("permission %q, tool %q", in.Permission, in.Tool))
	}
	if !isNull(in.Args) {
		if first(in.Args) != '{' {
			return q, wrongType("args", "object")
		}
		// Numbers stay json.Number: an amount is never read through a float.
		dec := json.NewDecoder(bytes.NewReader(in.Args))
		dec.UseNumber()
		if err := dec.Decode(&q.Args); err != nil {
			return q, invalid("error.bad_json", nil).wrap(err)
		}
	}
	return q, nil
}

// handleEffective answers GET /api/v1/me/effective?tenant=ID with
// everything the caller may do in the tenant.
func (s *Server) handleEffective(w http.ResponseWriter, r *http.Request) {
	eff, err := s.svc.Effective(callerOf(r).Subject, r.URL.Query().Get("tenant"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, eff)
}

// tenantList is the answer of GET /api/v1/me/tenants.
type tenantList struct {
	Tenants []gatehouse.TenantSummary `json:"tenants"`
}

// handleMyTenants answers GET /api/v1/me/tenants with the tenants the
// caller may see.
func (s *Server) handleMyTenants(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, tenantList{Tenants: s.svc.VisibleTenants(callerOf(r))})
}

// handlePolicy answers GET /api/v1/policy with the stored policy as a YAML
// document that `gatehouse apply` accepts; admins only.
func (s *Server) handlePolicy(w http.ResponseWriter, r *http.Request) {
	if err := s.requireAdmin(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	p, _, err := s.svc.Policy(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	out := &startedWriter{w: w}
	if err := policy.Encode(out, p, "yaml"); err != nil {
		if !out.started {
			w.Header().Del("Content-Type")
			s.writeError(w, r, err)
			return
		}
		// A document cut short could be applied as a shorter policy: break
		// the response instead of ending it cleanly.
		s.cfg.Logger.Debug("write policy", "request_id", requestID(r.Context()), "err", err)
		panic(http.ErrAbortHandler)
	}
}

// startedWriter records whether anything was written to w.
type startedWriter struct {
	w       io.Writer
	started bool
}

func (sw *startedWriter) Write(p []byte) (int, error) {
	sw.started = true
	return sw.w.Write(p)
}
