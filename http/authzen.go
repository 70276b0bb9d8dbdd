package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Evaluations semantics (AuthZEN options.evaluations_semantic).
const (
	SemanticExecuteAll          = "execute_all"
	SemanticDenyOnFirstDeny     = "deny_on_first_deny"
	SemanticPermitOnFirstPermit = "permit_on_first_permit"
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

// evaluation is one access evaluation request, its entities resolved. err
// is set instead for an item of a batch that is malformed: the batch goes
// on and that item is a deny (certification scenario C.3.4.1).
type evaluation struct {
	subject  entity
	action   action
	resource entity
	context  map[string]any
	err      error
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
	if p.subject, err = parseEntity(m["subject"], prefix+"subject", true); err != nil {
		return parts{}, err
	}
	if p.resource, err = parseEntity(m["resource"], prefix+"resource", true); err != nil {
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

// parseEntity reads a subject or resource: type a required string, id a
// string required when needID (a search's target may omit it, and its id is
// ignored), properties an optional object. Absent is nil.
func parseEntity(raw json.RawMessage, path string, needID bool) (*entity, error) {
	m, err := parseObject(raw, path)
	if err != nil || m == nil {
		return nil, err
	}
	var e entity
	if e.typ, err = requiredString(m, "type", path+".type"); err != nil {
		return nil, err
	}
	if needID {
		if e.id, err = requiredString(m, "id", path+".id"); err != nil {
			return nil, err
		}
	} else if raw := m["id"]; !isNull(raw) && first(raw) != '"' {
		return nil, wrongType(path+".id", "string")
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

// topObject parses a request body, which must be one well-formed JSON
// object (see checkJSON).
func topObject(body []byte) (map[string]json.RawMessage, error) {
	if first(body) != '{' {
		return nil, invalid("error.bad_json", nil).wrap(fmt.Errorf("body is not a JSON object"))
	}
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	return parseObject(body, "")
}

// parseEvaluation parses an Access Evaluation API request body; a body
// the API must answer 400 is an *Error with code invalid. A plain, complete
// request (the common case) is decoded in one pass by decodePlain; any
// other goes the member-by-member way that names what is wrong.
func parseEvaluation(body []byte) (evaluation, error) {
	if first(body) == '{' {
		plain, err := scanJSON(body)
		if err != nil {
			return evaluation{}, err
		}
		if e, ok := decodePlain(body, plain); ok {
			return e, nil
		}
	}
	return parseEvaluationMembers(body)
}

// parseEvaluationMembers parses an evaluation member by member.
func parseEvaluationMembers(body []byte) (evaluation, error) {
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

// plainEvaluation is an evaluation request as encoding/json decodes it.
type (
	plainEntity struct {
		Type       string         `json:"type"`
		ID         string         `json:"id"`
		Properties map[string]any `json:"properties"`
	}
	plainAction struct {
		Name       string         `json:"name"`
		Properties map[string]any `json:"properties"`
	}
	plainEvaluation struct {
		Subject  *plainEntity   `json:"subject"`
		Action   *plainAction   `json:"action"`
		Resource *plainEntity   `json:"resource"`
		Context  map[string]any `json:"context"`
	}
)

// decodePlain decodes a checked body that scanJSON found plain, if it is a
// complete evaluation whose members all have their types; ok is false for
// anything else, which parseEvaluationMembers then reads to name the
// problem. For what it accepts it returns what parseEvaluationMembers
// would (FuzzPlainEvaluation checks this).
func decodePlain(body []byte, plain bool) (e evaluation, ok bool) {
	var p plainEvaluation
	if !plain || json.Unmarshal(body, &p) != nil || p.Subject == nil || p.Action == nil || p.Resource == nil ||
		p.Subject.Type == "" || p.Subject.ID == "" || p.Action.Name == "" || p.Resource.Type == "" || p.Resource.ID == "" {
		return evaluation{}, false
	}
	return evaluation{
		subject:  entity{typ: p.Subject.Type, id: p.Subject.ID, props: p.Subject.Properties},
		action:   action{name: p.Action.Name, props: p.Action.Properties},
		resource: entity{typ: p.Resource.Type, id: p.Resource.ID, props: p.Resource.Properties},
		context:  p.Context,
	}, true
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
		b.evals[i] = parseItem(raw, defaults, fmt.Sprintf("evaluations[%d]", i))
	}
	return b, nil
}

// parseItem parses one evaluation of a batch over the defaults. A
// malformed item becomes an evaluation carrying its error.
func parseItem(raw json.RawMessage, defaults parts, prefix string) evaluation {
	m, err := parseObject(raw, prefix)
	if err == nil && m == nil {
		err = wrongType(prefix, "object")
	}
	if err != nil {
		return evaluation{err: err}
	}
	p, err := parseParts(m, prefix+".")
	if err != nil {
		return evaluation{err: err}
	}
	ev, err := p.complete(defaults, prefix+".")
	if err != nil {
		return evaluation{err: err}
	}
	return ev
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
	// Action is the agent action the evaluated tool performs; Limit the
	// limit an action_disabled… limit_exceeded denial is about, with its
	// figures.
	Action string                   `json:"action,omitempty"`
	Limit  *gatehouse.LimitExceeded `json:"limit,omitempty"`
	// Confirmation, on confirmation_required, says where the call is
	// authorized to create the pending action a human then confirms.
	Confirmation *confirmationHint `json:"confirmation,omitempty"`
	// Problem says, in English, why the request could not be mapped.
	Problem string `json:"problem,omitempty"`
	// Error says what is wrong with a malformed item of a batch.
	Error *errorDetail `json:"error,omitempty"`
}

// confirmationHint is where a PEP creates the confirmation an evaluation
// said is required: POST the same call to Endpoint (the native agent
// action API), which stores it pending and returns its action_id.
type confirmationHint struct {
	Method   string `json:"method"`
	Endpoint string `json:"endpoint"`
}

// authorizeEndpoint is the path that creates a pending action.
const authorizeEndpoint = "/api/v1/actions/authorize"

func (s *Server) handleEvaluation(w http.ResponseWriter, r *http.Request) {
	body, scope, err := s.authzenRequest(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ev, err := parseEvaluation(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := s.question(r, "evaluation", scope, &ev)
	start := time.Now()
	a, err := s.svc.Evaluate(r.Context(), callerOf(r), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.metrics.decided("evaluation", a.Reason, time.Since(start))
	s.writeJSON(w, r, http.StatusOK, s.decisionJSON(r, &a, &ev))
}

func (s *Server) handleEvaluations(w http.ResponseWriter, r *http.Request) {
	body, scope, err := s.authzenRequest(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	b, err := parseBatch(body, s.cfg.MaxEvaluations)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	qs := make([]gatehouse.Question, len(b.evals))
	for i := range b.evals {
		qs[i] = s.question(r, "evaluations", scope, &b.evals[i])
	}
	// Short-circuits return the results up to and including the deciding one.
	var stop func(gatehouse.Answer) bool
	switch b.semantic {
	case SemanticDenyOnFirstDeny:
		stop = func(a gatehouse.Answer) bool { return !a.Allowed }
	case SemanticPermitOnFirstPermit:
		stop = func(a gatehouse.Answer) bool { return a.Allowed }
	}
	start := time.Now()
	// One snapshot decides the whole batch.
	answers, err := s.svc.EvaluateAll(r.Context(), callerOf(r), qs, stop)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	took := time.Since(start) / time.Duration(max(len(answers), 1))
	results := make([]decisionJSON, len(answers))
	for i := range answers {
		s.metrics.decided("evaluations", answers[i].Reason, took)
		results[i] = s.decisionJSON(r, &answers[i], &b.evals[i])
	}
	if b.single {
		s.writeJSON(w, r, http.StatusOK, results[0])
		return
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Evaluations []decisionJSON `json:"evaluations"`
	}{results})
}

// authzenRequest reads the body of an AuthZEN request and the tenant its
// base URL is scoped to ("" for the root one). AuthZEN answers a body that
// is not declared JSON with 400, as its certification requires, where the
// native API answers 415.
func (s *Server) authzenRequest(w http.ResponseWriter, r *http.Request) (body []byte, scope string, err error) {
	if scope, err = s.scope(r); err != nil {
		return nil, "", err
	}
	body, err = s.readBody(w, r)
	var e *Error
	if errors.As(err, &e) && e.Code == CodeUnsupportedMediaType {
		return nil, "", invalid("error."+CodeUnsupportedMediaType, nil).wrap(e.Err)
	}
	return body, scope, err
}

// scope returns the tenant of a tenant-scoped PDP base URL such as
// https://pdp.example.com/acme, whose endpoints are /acme/access/v1/…: its
// requests are decided within that tenant's subtree. An unknown tenant is
// not found.
func (s *Server) scope(r *http.Request) (string, error) {
	tenant := r.PathValue("tenant")
	if tenant == "" {
		return "", nil
	}
	if !s.svc.TenantExists(tenant) {
		return "", &Error{Code: gatehouse.CodeNotFound, Err: fmt.Errorf("tenant %q", tenant)}
	}
	return tenant, nil
}

// question maps an AuthZEN evaluation onto the service's question (see
// toQuestion), for endpoint of a PDP scoped to scope.
func (s *Server) question(r *http.Request, endpoint, scope string, ev *evaluation) gatehouse.Question {
	q := toQuestion(ev)
	q.Within, q.Surface = scope, endpoint
	q.Lang, q.RequestID = language(r.Context()), requestID(r.Context())
	return q
}

// decisionJSON is the AuthZEN form of the service's answer a to ev.
func (s *Server) decisionJSON(r *http.Request, a *gatehouse.Answer, ev *evaluation) decisionJSON {
	out := decisionJSON{Decision: a.Allowed, Context: decisionContext{
		Reason:           a.Reason,
		Message:          a.Message,
		Version:          a.Version,
		Plan:             a.Plan,
		Feature:          a.Feature,
		DeniedSubject:    a.DeniedSubject,
		DeniedPermission: a.DeniedPermission,
		Action:           a.Action,
		Limit:            a.Limit,
	}}
	if a.Reason == gatehouse.ReasonConfirmationRequired {
		out.Context.Confirmation = &confirmationHint{Method: http.MethodPost, Endpoint: authorizeEndpoint}
	}
	if ev.err != nil {
		e := &Error{Code: gatehouse.CodeInvalid}
		errors.As(ev.err, &e)
		out.Context.Error = &errorDetail{Code: e.Code, Message: s.text(language(r.Context()), e.messageID(), e.Data)}
	} else if a.Reason == gatehouse.ReasonInvalidRequest {
		out.Context.Problem = a.Problem
	}
	return out
}

// toQuestion maps an AuthZEN evaluation onto a Gatehouse question (see
// docs/authzen.md): action.name names a tool if the policy has one of that
// name, else the tool of an agent action type of that name, else a
// permission; a resource of type tool is a call of that tool, of type
// tenant a request in that tenant; the arguments of an agent action are
// context overlaid with action.properties. A request Gatehouse cannot
// answer (an item of a batch that is malformed, a malformed on_behalf_of,
// a tenant that is not a string) carries its Problem and is answered
// invalid_request; a subject type other than user and agent is left to the
// service (settings.subject_types, else unknown_subject_type).
func toQuestion(ev *evaluation) gatehouse.Question {
	var q gatehouse.Question
	if ev.err != nil {
		q.Problem = ev.err.Error()
		return q
	}
	switch gatehouse.SubjectType(ev.subject.typ) {
	case gatehouse.SubjectUser:
		q.Subject = gatehouse.User(strings.TrimSpace(ev.subject.id))
	case gatehouse.SubjectAgent:
		q.Subject = gatehouse.AgentRef(ev.subject.id)
	default:
		// The application's own type (settings.subject_types): the
		// service maps it, or answers unknown_subject_type.
		q.Subject = gatehouse.SubjectRef{Type: gatehouse.SubjectType(ev.subject.typ), ID: ev.subject.id}
	}
	q.SubjectProperties = ev.subject.props
	if raw := ev.subject.props["on_behalf_of"]; raw != nil {
		s, isString := raw.(string)
		if !isString {
			q.Problem = "subject.properties.on_behalf_of must be a string naming a user"
			return q
		}
		obo, err := gatehouse.ParseSubject(s)
		if err != nil || obo.Type != gatehouse.SubjectUser {
			q.Problem = fmt.Sprintf("subject.properties.on_behalf_of %q must name a user", s)
			return q
		}
		q.OnBehalfOf = obo
	}
	q.Name = ev.action.name
	q.ActionProperties = ev.action.props
	q.Resource = gatehouse.Resource{Type: ev.resource.typ, ID: ev.resource.id, Properties: ev.resource.props}
	q.Context = ev.context
	q.Args = actionArgs(ev.context, ev.action.props)
	switch ev.resource.typ {
	case gatehouse.ResourceTypeTenant:
		q.Tenant = ev.resource.id
		return q
	case gatehouse.ResourceTypeTool:
		q.Tool, q.Permission, q.Name = ev.resource.id, ev.action.name, ""
	}
	for _, m := range []map[string]any{ev.resource.props, ev.context} {
		v := m["tenant"]
		if v == nil {
			continue
		}
		t, isString := v.(string)
		if !isString {
			q.Problem = "the tenant must be a string"
			return q
		}
		q.Tenant = t
		break
	}
	return q
}

// actionArgs are the arguments of an evaluated agent action: context,
// overlaid with action.properties.
func actionArgs(context, props map[string]any) map[string]any {
	if len(props) == 0 {
		return context
	}
	if len(context) == 0 {
		return props
	}
	args := make(map[string]any, len(context)+len(props))
	maps.Copy(args, context)
	maps.Copy(args, props)
	return args
}

// metadata is the AuthZEN PDP metadata document.
type metadata struct {
	PolicyDecisionPoint       string `json:"policy_decision_point"`
	AccessEvaluationEndpoint  string `json:"access_evaluation_endpoint"`
	AccessEvaluationsEndpoint string `json:"access_evaluations_endpoint"`
	SearchSubjectEndpoint     string `json:"search_subject_endpoint"`
	SearchResourceEndpoint    string `json:"search_resource_endpoint"`
	SearchActionEndpoint      string `json:"search_action_endpoint"`
}

// handleMetadata serves the metadata of the root PDP and, at
// /.well-known/authzen-configuration/{tenant}, of a tenant-scoped one.
func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	scope, err := s.scope(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	base := s.baseURL(r)
	if scope != "" {
		base += "/" + url.PathEscape(scope)
	}
	w.Header().Set("Cache-Control", "max-age=300")
	s.writeJSON(w, r, http.StatusOK, metadata{
		PolicyDecisionPoint:       base,
		AccessEvaluationEndpoint:  base + "/access/v1/evaluation",
		AccessEvaluationsEndpoint: base + "/access/v1/evaluations",
		SearchSubjectEndpoint:     base + "/access/v1/search/subject",
		SearchResourceEndpoint:    base + "/access/v1/search/resource",
		SearchActionEndpoint:      base + "/access/v1/search/action",
	})
}
