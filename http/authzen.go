package http

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/locale"
)

// Evaluations semantics (AuthZEN options.evaluations_semantic).
const (
	SemanticExecuteAll          = "execute_all"
	SemanticDenyOnFirstDeny     = "deny_on_first_deny"
	SemanticPermitOnFirstPermit = "permit_on_first_permit"
)

// AuthZEN resource types with a Gatehouse meaning; any other type is the
// application's own and reaches conditions as resource.type.
const (
	ResourceTool   = "tool"
	ResourceTenant = "tenant"
)

// entity is an AuthZEN subject or resource.
type entity struct {
	typ, id string
	props   map[string]any
}

// action is an AuthZEN action.
type action struct {
	name  string
	props map[string]any
}

// evaluation is one access evaluation request, its entities resolved.
type evaluation struct {
	subject  entity
	action   action
	resource entity
	context  map[string]any
}

// parts are the entities one JSON object supplies; nil means absent.
type parts struct {
	subject  *entity
	action   *action
	resource *entity
	context  map[string]any
}

// parseParts reads subject, action, resource and context from m, naming
// fields with prefix in errors. Other members are ignored, as AuthZEN
// requires of receivers.
func parseParts(m map[string]json.RawMessage, prefix string) (parts, error) {
	var p parts
	var err error
	if p.subject, err = parseEntity(m["subject"], prefix+"subject"); err != nil {
		return parts{}, err
	}
	if p.resource, err = parseEntity(m["resource"], prefix+"resource"); err != nil {
		return parts{}, err
	}
	act, err := parseObject(m["action"], prefix+"action")
	if err != nil {
		return parts{}, err
	}
	if act != nil {
		p.action = &action{}
		if p.action.name, err = requiredString(act, "name", prefix+"action.name"); err != nil {
			return parts{}, err
		}
		if p.action.props, err = parseAny(act["properties"], prefix+"action.properties"); err != nil {
			return parts{}, err
		}
	}
	if p.context, err = parseAny(m["context"], prefix+"context"); err != nil {
		return parts{}, err
	}
	return p, nil
}

// parseEntity reads a subject or resource: type and id required strings,
// properties an optional object. Absent is nil.
func parseEntity(raw json.RawMessage, path string) (*entity, error) {
	m, err := parseObject(raw, path)
	if err != nil || m == nil {
		return nil, err
	}
	var e entity
	if e.typ, err = requiredString(m, "type", path+".type"); err != nil {
		return nil, err
	}
	if e.id, err = requiredString(m, "id", path+".id"); err != nil {
		return nil, err
	}
	if e.props, err = parseAny(m["properties"], path+".properties"); err != nil {
		return nil, err
	}
	return &e, nil
}

// complete merges p over the defaults and requires subject, action and
// resource; prefix names where a missing one was expected.
func (p parts) complete(defaults parts, prefix string) (evaluation, error) {
	if p.subject == nil {
		p.subject = defaults.subject
	}
	if p.action == nil {
		p.action = defaults.action
	}
	if p.resource == nil {
		p.resource = defaults.resource
	}
	if p.context == nil {
		p.context = defaults.context
	}
	switch {
	case p.subject == nil:
		return evaluation{}, missingField(prefix + "subject")
	case p.action == nil:
		return evaluation{}, missingField(prefix + "action")
	case p.resource == nil:
		return evaluation{}, missingField(prefix + "resource")
	}
	return evaluation{subject: *p.subject, action: *p.action, resource: *p.resource, context: p.context}, nil
}

// topObject parses a request body, which must be one JSON object.
func topObject(body []byte) (map[string]json.RawMessage, error) {
	if first(body) != '{' {
		return nil, invalid("error.bad_json", nil).wrap(fmt.Errorf("body is not a JSON object"))
	}
	return parseObject(body, "")
}

// parseEvaluation parses an Access Evaluation API request body; a body
// the API must answer 400 is an *Error with code invalid.
func parseEvaluation(body []byte) (evaluation, error) {
	top, err := topObject(body)
	if err != nil {
		return evaluation{}, err
	}
	p, err := parseParts(top, "")
	if err != nil {
		return evaluation{}, err
	}
	return p.complete(parts{}, "")
}

// batch is a parsed Access Evaluations API request. A request without
// evaluations is a single evaluation (single is true, evals has one).
type batch struct {
	evals    []evaluation
	semantic string
	single   bool
}

func parseBatch(body []byte, maxEvaluations int) (batch, error) {
	top, err := topObject(body)
	if err != nil {
		return batch{}, err
	}
	defaults, err := parseParts(top, "")
	if err != nil {
		return batch{}, err
	}
	b := batch{semantic: SemanticExecuteAll}
	opts, err := parseObject(top["options"], "options")
	if err != nil {
		return batch{}, err
	}
	if raw := opts["evaluations_semantic"]; !isNull(raw) {
		var sem string
		if json.Unmarshal(raw, &sem) != nil || (sem != SemanticExecuteAll && sem != SemanticDenyOnFirstDeny && sem != SemanticPermitOnFirstPermit) {
			return batch{}, invalid("error.bad_semantic", nil).wrap(fmt.Errorf("evaluations_semantic %s", raw))
		}
		b.semantic = sem
	}
	var items []json.RawMessage
	if raw := top["evaluations"]; !isNull(raw) {
		if first(raw) != '[' {
			return batch{}, wrongType("evaluations", "array")
		}
		if err := json.Unmarshal(raw, &items); err != nil {
			return batch{}, invalid("error.bad_json", nil).wrap(err)
		}
	}
	if len(items) == 0 {
		ev, err := defaults.complete(parts{}, "")
		if err != nil {
			return batch{}, err
		}
		return batch{evals: []evaluation{ev}, semantic: b.semantic, single: true}, nil
	}
	if len(items) > maxEvaluations {
		return batch{}, invalid("error.too_many_evaluations", map[string]any{"Max": maxEvaluations}).
			wrap(fmt.Errorf("%d evaluations", len(items)))
	}
	b.evals = make([]evaluation, len(items))
	for i, raw := range items {
		prefix := fmt.Sprintf("evaluations[%d]", i)
		m, err := parseObject(raw, prefix)
		if err != nil {
			return batch{}, err
		}
		if m == nil {
			return batch{}, wrongType(prefix, "object")
		}
		p, err := parseParts(m, prefix+".")
		if err != nil {
			return batch{}, err
		}
		if b.evals[i], err = p.complete(defaults, prefix+"."); err != nil {
			return batch{}, err
		}
	}
	return b, nil
}

// decisionJSON is an AuthZEN decision. Context always carries the reason
// code, its localized message and the policy version that decided.
type decisionJSON struct {
	Decision bool            `json:"decision"`
	Context  decisionContext `json:"context"`
}

type decisionContext struct {
	Reason        gatehouse.Reason `json:"reason"`
	Message       string           `json:"message"`
	Version       int64            `json:"version"`
	Plan          string           `json:"plan,omitempty"`
	Feature       string           `json:"feature,omitempty"`
	DeniedSubject string           `json:"denied_subject,omitempty"`
	// DeniedPermission is the permission a denial is about.
	DeniedPermission string `json:"denied_permission,omitempty"`
}

func (s *Server) handleEvaluation(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ev, err := parseEvaluation(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, s.evaluate(r, &ev))
}

func (s *Server) handleEvaluations(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	b, err := parseBatch(body, s.cfg.MaxEvaluations)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if b.single {
		s.writeJSON(w, r, http.StatusOK, s.evaluate(r, &b.evals[0]))
		return
	}
	results := make([]decisionJSON, 0, len(b.evals))
	for i := range b.evals {
		d := s.evaluate(r, &b.evals[i])
		results = append(results, d)
		// Short-circuits return the results up to and including the deciding one.
		if (b.semantic == SemanticDenyOnFirstDeny && !d.Decision) || (b.semantic == SemanticPermitOnFirstPermit && d.Decision) {
			break
		}
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Evaluations []decisionJSON `json:"evaluations"`
	}{results})
}

// evaluate decides one evaluation. It never fails: a request Gatehouse
// cannot map is a deny with invalid_request, and an internal failure is a
// deny with internal_error.
func (s *Server) evaluate(r *http.Request, ev *evaluation) (out decisionJSON) {
	lang := language(r.Context())
	defer func() {
		if v := recover(); v != nil {
			s.cfg.Logger.Error("evaluation panic", "request_id", requestID(r.Context()), "panic", v)
			out = s.decisionJSON(lang, gatehouse.Decision{Reason: gatehouse.ReasonInternalError}, locale.Args{})
		}
	}()
	req, tool, ok := toRequest(ev)
	args := locale.Args{Subject: req.Subject.String(), Permission: ev.action.name, Tenant: req.Tenant}
	if !ok {
		d := gatehouse.Decision{Reason: gatehouse.ReasonInvalidRequest, Version: s.svc.Snapshot().Version()}
		return s.decisionJSON(lang, d, args)
	}
	var d gatehouse.Decision
	if tool != "" {
		args.Permission = tool
		d = s.svc.CheckTool(&req, tool)
	} else {
		// action.name names a tool if the policy has one of that name,
		// else a permission.
		d = s.svc.CheckTool(&req, ev.action.name)
		if d.Reason == gatehouse.ReasonUnknownPermission {
			d = s.svc.Check(&req)
		}
	}
	return s.decisionJSON(lang, d, args)
}

func (s *Server) decisionJSON(lang string, d gatehouse.Decision, args locale.Args) decisionJSON {
	return decisionJSON{Decision: d.Allowed, Context: decisionContext{
		Reason:           d.Reason,
		Message:          s.cfg.Catalog.Reason(lang, d, args),
		Version:          d.Version,
		Plan:             d.Plan,
		Feature:          d.Feature,
		DeniedSubject:    d.Subject.String(),
		DeniedPermission: d.Permission,
	}}
}

// toRequest maps an AuthZEN evaluation onto a Gatehouse request (see
// docs/http.md). tool is set for a resource of type tool. ok is false for a
// request Gatehouse cannot answer: an unknown subject type, a malformed
// on_behalf_of, or a tenant that is not a string.
func toRequest(ev *evaluation) (req gatehouse.Request, tool string, ok bool) {
	switch gatehouse.SubjectType(ev.subject.typ) {
	case gatehouse.SubjectUser:
		req.Subject = gatehouse.User(gatehouse.NormalizeEmail(ev.subject.id))
	case gatehouse.SubjectAgent:
		req.Subject = gatehouse.AgentRef(ev.subject.id)
	default:
		return req, "", false
	}
	req.SubjectProperties = ev.subject.props
	if raw := ev.subject.props["on_behalf_of"]; raw != nil {
		s, isString := raw.(string)
		if !isString {
			return req, "", false
		}
		obo, err := gatehouse.ParseSubject(s)
		if err != nil || obo.Type != gatehouse.SubjectUser {
			return req, "", false
		}
		req.OnBehalfOf = obo
	}
	req.Permission = ev.action.name
	req.ActionProperties = ev.action.props
	req.Resource = gatehouse.Resource{Type: ev.resource.typ, ID: ev.resource.id, Properties: ev.resource.props}
	req.Context = ev.context
	if ev.resource.typ == ResourceTenant {
		req.Tenant = ev.resource.id
		return req, "", true
	}
	if ev.resource.typ == ResourceTool {
		tool = ev.resource.id
	}
	for _, m := range []map[string]any{ev.resource.props, ev.context} {
		v := m["tenant"]
		if v == nil {
			continue
		}
		t, isString := v.(string)
		if !isString {
			return req, "", false
		}
		req.Tenant = t
		break
	}
	return req, tool, true
}

// metadata is the AuthZEN PDP metadata document. The search endpoints are
// absent, which tells PEPs this PDP does not offer them.
type metadata struct {
	PolicyDecisionPoint       string `json:"policy_decision_point"`
	AccessEvaluationEndpoint  string `json:"access_evaluation_endpoint"`
	AccessEvaluationsEndpoint string `json:"access_evaluations_endpoint"`
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	base := s.baseURL(r)
	w.Header().Set("Cache-Control", "max-age=300")
	s.writeJSON(w, r, http.StatusOK, metadata{
		PolicyDecisionPoint:       base,
		AccessEvaluationEndpoint:  base + "/access/v1/evaluation",
		AccessEvaluationsEndpoint: base + "/access/v1/evaluations",
	})
}

// baseURL is Config.BaseURL, or the URL the request came in on: https when
// the connection is TLS or a proxy says so in X-Forwarded-Proto, and the
// Host header.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.BaseURL != "" {
		return s.cfg.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	} else {
		proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
		if p := strings.ToLower(strings.TrimSpace(proto)); p == "https" || p == "http" {
			scheme = p
		}
	}
	return scheme + "://" + r.Host
}
