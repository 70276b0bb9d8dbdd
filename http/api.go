package http

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/locale"
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
}

func (s *Server) handleCheck(w http.ResponseWriter, r *http.Request)   { s.check(w, r, false) }
func (s *Server) handleExplain(w http.ResponseWriter, r *http.Request) { s.check(w, r, true) }

// check decides a native check request. Any caller may ask about itself
// (an agent also for the user it acts for); asking about another subject
// needs admin rights.
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
	caller := info(r.Context()).caller
	req, err := in.request(caller)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Subject != caller {
		if err := s.requireAdmin(r, caller); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	start := time.Now()
	ex := s.svc.Decide(&req, in.Tool, explain)
	endpoint := "check"
	if explain {
		endpoint = "explain"
	}
	rec := decisionRecord{Subject: req.Subject.String(), OnBehalfOf: req.OnBehalfOf.String(), Action: req.Permission, Tool: in.Tool, Tenant: req.Tenant}
	if req.Resource.Type != "" || req.Resource.ID != "" {
		rec.Resource = &resourceRef{Type: req.Resource.Type, ID: req.Resource.ID}
	}
	s.recordDecision(r, endpoint, rec, ex.Decision, time.Since(start))
	msg := s.cfg.Catalog.Reason(language(r.Context()), ex.Decision, locale.RequestArgs(&req, in.Tool))
	s.writeJSON(w, r, http.StatusOK, gatehouse.NewAnswer(&req, in.Tool, ex, msg))
}

// request builds the Gatehouse request, the subject defaulting to caller.
func (in *checkRequest) request(caller gatehouse.SubjectRef) (gatehouse.Request, error) {
	req := gatehouse.Request{
		Subject: caller, Permission: in.Permission, Tenant: in.Tenant, Resource: in.Resource,
		Context: in.Context, SubjectProperties: in.SubjectProperties, ActionProperties: in.ActionProperties,
	}
	if in.Subject != "" {
		ref, err := gatehouse.ParseSubject(in.Subject)
		if err != nil {
			return req, invalid("error.bad_subject", map[string]any{"Field": "subject"}).wrap(err)
		}
		req.Subject = ref
	}
	if in.OnBehalfOf != "" {
		ref, err := gatehouse.ParseSubject(in.OnBehalfOf)
		if err != nil {
			return req, invalid("error.bad_subject", map[string]any{"Field": "on_behalf_of"}).wrap(err)
		}
		req.OnBehalfOf = ref
	}
	if (in.Permission == "") == (in.Tool == "") {
		return req, invalid("error.permission_or_tool", nil).wrap(fmt.Errorf("permission %q, tool %q", in.Permission, in.Tool))
	}
	return req, nil
}

// handleEffective answers GET /api/v1/me/effective?tenant=ID with
// everything the caller may do in the tenant.
func (s *Server) handleEffective(w http.ResponseWriter, r *http.Request) {
	eff, err := s.svc.Effective(info(r.Context()).caller, r.URL.Query().Get("tenant"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, eff)
}

// handlePolicy answers GET /api/v1/policy with the stored policy as a YAML
// document that `gatehouse apply` accepts; admins only.
func (s *Server) handlePolicy(w http.ResponseWriter, r *http.Request) {
	if err := s.requireAdmin(r, info(r.Context()).caller); err != nil {
		s.writeError(w, r, err)
		return
	}
	p, _, err := s.svc.Policy(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := policy.Marshal(p, "yaml")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	if _, err := w.Write(out); err != nil {
		s.cfg.Logger.Debug("write response", "request_id", requestID(r.Context()), "err", err)
	}
}
