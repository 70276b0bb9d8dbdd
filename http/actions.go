package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
)

// The agent action API (seed 004) under /api/v1/actions: authorize (and
// reserve), simulate or replay, the confirmation lifecycle and the record
// list. A denial is a 200 with allowed false, as for /api/v1/check; errors
// use the error table. The action policies are at /api/v1/permissions
// (permissions.go).

type (
	// actionBody is the body of authorize and simulate. Subject defaults
	// to the caller; tenant to the X-Tenant-ID header; the idempotency key
	// to the Idempotency-Key header.
	actionBody struct {
		Subject        string             `json:"subject"`
		OnBehalfOf     string             `json:"on_behalf_of"`
		Tenant         string             `json:"tenant"`
		Tool           string             `json:"tool"`
		Args           json.RawMessage    `json:"args" description:"the tool's arguments; amounts as decimal strings or numbers"`
		Context        map[string]any     `json:"context"`
		Resource       gatehouse.Resource `json:"resource"`
		IdempotencyKey string             `json:"idempotency_key"`
		// Replay, on simulate only, replays recorded actions against a
		// proposed policy instead of deciding one action.
		Replay *replayBody `json:"replay,omitempty"`
	}
	replayBody struct {
		Policy   json.RawMessage `json:"policy" description:"a policy document (JSON) applied over the stored policy, as apply would"`
		Days     int             `json:"days" description:"days of recorded actions to replay, default 7"`
		Examples int             `json:"examples" description:"denied actions to show, default 10"`
	}
	failBody struct {
		ErrorMessage string `json:"error_message"`
	}
	actionPage struct {
		Actions []gatehouse.ActionRecord `json:"actions"`
		// Next is the cursor of the following page, 0 at the end.
		Next int64 `json:"next"`
	}
	actionQuery struct {
		ID      string    `query:"id" description:"only this action"`
		Tenant  string    `query:"tenant"`
		Action  string    `query:"action" description:"only actions of this type"`
		Status  string    `query:"status" description:"pending, confirmed, executed, failed, cancelled or expired"`
		Subject string    `query:"subject"`
		Since   time.Time `query:"since" description:"RFC 3339, inclusive"`
		Until   time.Time `query:"until" description:"RFC 3339, exclusive"`
		After   int64     `query:"after" description:"the cursor: actions after this sequence number"`
		Limit   int       `query:"limit"`
		// Approvable keeps the pending actions the caller may confirm now,
		// whoever requested them; the service decides (the inbox's list).
		Approvable bool `query:"approvable" description:"only pending actions the caller may confirm now, as the service decides; status must be empty or pending"`
	}
	actionIDPath struct {
		ID string `path:"id" description:"the action's id"`
	}
)

func (s *Server) actionRoutes(mux *http.ServeMux) {
	doc := func(id, summary string, body, resp any) operation {
		return apiDoc(id, summary, body, resp).tagged("actions").withScope(gatehouse.ScopeCheck)
	}
	s.route(mux, http.MethodPost, "/api/v1/actions/authorize", s.authenticated(s.handleActionAuthorize),
		doc("authorize_action", "Decide an agent action and, if allowed, reserve its limits (pending until confirmed when required)",
			new(actionBody), new(gatehouse.Answer)))
	s.route(mux, http.MethodPost, "/api/v1/actions/simulate", s.authenticated(s.handleActionSimulate),
		doc("simulate_action", "Decide an action without reserving it, or replay recorded actions against a proposed policy",
			new(actionBody), new(gatehouse.Answer)))
	s.route(mux, http.MethodGet, "/api/v1/actions/{id}", s.authenticated(s.handleActionGet),
		doc("get_action", "One action record, its status as of now", nil, new(gatehouse.ActionRecord)).withParams(new(idPath)))
	s.route(mux, http.MethodGet, "/api/v1/actions/events", s.authenticated(s.handleActionEvents),
		operation{id: "action_events", summary: "Server-sent events: an action record the caller may see or confirm moved, or the policy changed",
			tag: "actions", security: securityBearer, contentType: "text/event-stream", scope: gatehouse.ScopeCheck})
	s.route(mux, http.MethodGet, "/api/v1/actions", s.authenticated(s.handleActionList),
		doc("list_actions", "Action records, oldest first, with cursor pagination", nil, new(actionPage)).withParams(new(actionQuery)))
	for _, step := range []struct {
		op      string
		summary string
		body    any
	}{
		{"confirm", "Confirm a pending action, as its customer or an approver", nil},
		{"cancel", "Cancel a pending action, releasing its reservation", nil},
		{"executed", "Record that a confirmed action was carried out", nil},
		{"failed", "Record that a confirmed action failed, releasing its reservation", new(failBody)},
	} {
		s.route(mux, http.MethodPost, "/api/v1/actions/{id}/"+step.op, s.authenticated(s.handleActionStep(step.op)),
			doc(step.op+"_action", step.summary, step.body, new(gatehouse.ActionRecord)).withParams(new(actionIDPath)))
	}
}

func (s *Server) handleActionAuthorize(w http.ResponseWriter, r *http.Request) {
	q, in, ok := s.readAction(w, r)
	if !ok {
		return
	}
	key := in.IdempotencyKey
	if key == "" {
		key = r.Header.Get("Idempotency-Key")
	}
	q.Surface = "actions.authorize"
	a, err := s.svc.AuthorizeToolCall(r.Context(), callerOf(r), q, key)
	s.answerAction(w, r, a, err)
}

func (s *Server) handleActionSimulate(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var probe struct {
		Replay *replayBody `json:"replay"`
	}
	if json.Unmarshal(body, &probe) == nil && probe.Replay != nil {
		s.replayActions(w, r, *probe.Replay)
		return
	}
	q, _, ok := s.decodeAction(w, r, body)
	if !ok {
		return
	}
	q.Surface = "actions.simulate"
	a, err := s.svc.Simulate(r.Context(), callerOf(r), q)
	s.answerAction(w, r, a, err)
}

// replayActions replays recorded actions against a proposed policy; admins only.
func (s *Server) replayActions(w http.ResponseWriter, r *http.Request, in replayBody) {
	if err := s.requireAdmin(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Days == 0 {
		in.Days = 7
	}
	if in.Examples == 0 {
		in.Examples = 10
	}
	if in.Days < 0 || in.Days > 400 || in.Examples < 0 {
		s.writeError(w, r, invalid("error.bad_query", map[string]any{"Field": "replay.days"}).wrap(fmt.Errorf("days %d, examples %d", in.Days, in.Examples)))
		return
	}
	if first(in.Policy) != '{' {
		s.writeError(w, r, wrongType("replay.policy", "object"))
		return
	}
	doc, err := policy.Parse("replay.policy.json", in.Policy)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rep, err := s.svc.ReplayActions(r.Context(), doc, time.Duration(in.Days)*24*time.Hour, in.Examples)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, rep)
}

// readAction reads and decodes an authorize or simulate body.
func (s *Server) readAction(w http.ResponseWriter, r *http.Request) (gatehouse.Question, actionBody, bool) {
	body, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return gatehouse.Question{}, actionBody{}, false
	}
	return s.decodeAction(w, r, body)
}

// decodeAction builds the question of body; the service decides whether
// the caller may ask for its subject.
func (s *Server) decodeAction(w http.ResponseWriter, r *http.Request, body []byte) (gatehouse.Question, actionBody, bool) {
	var in actionBody
	if err := decodeStrict(body, &in); err != nil {
		s.writeError(w, r, err)
		return gatehouse.Question{}, in, false
	}
	caller := callerOf(r)
	q := gatehouse.Question{Request: gatehouse.Request{Subject: caller.Subject, Tenant: in.Tenant, Context: in.Context, Resource: in.Resource},
		Tool: in.Tool, Lang: language(r.Context()), RequestID: requestID(r.Context())}
	if q.Tenant == "" {
		q.Tenant = r.Header.Get("X-Tenant-ID")
	}
	fail := func(err error) (gatehouse.Question, actionBody, bool) {
		s.writeError(w, r, err)
		return gatehouse.Question{}, in, false
	}
	if in.Subject != "" {
		ref, err := gatehouse.ParseSubject(in.Subject)
		if err != nil {
			return fail(invalid("error.bad_subject", map[string]any{"Field": "subject"}).wrap(err))
		}
		q.Subject = ref
	}
	if in.OnBehalfOf != "" {
		ref, err := gatehouse.ParseSubject(in.OnBehalfOf)
		if err != nil {
			return fail(invalid("error.bad_subject", map[string]any{"Field": "on_behalf_of"}).wrap(err))
		}
		q.OnBehalfOf = ref
	}
	if strings.TrimSpace(in.Tool) == "" {
		return fail(missingField("tool"))
	}
	if !isNull(in.Args) {
		if first(in.Args) != '{' {
			return fail(wrongType("args", "object"))
		}
		// Numbers stay json.Number: an amount is never read through a float.
		dec := json.NewDecoder(bytes.NewReader(in.Args))
		dec.UseNumber()
		if err := dec.Decode(&q.Args); err != nil {
			return fail(invalid("error.bad_json", nil).wrap(err))
		}
	}
	return q, in, true
}

// answerAction writes the service's answer, or its error (a caller that
// may not act for the subject).
func (s *Server) answerAction(w http.ResponseWriter, r *http.Request, a gatehouse.Answer, err error) {
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, a)
}

// handleActionStep moves an action a step on in its lifecycle, as the
// caller; the service decides whether the caller may.
func (s *Server) handleActionStep(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, id, caller := r.Context(), r.PathValue("id"), callerOf(r)
		var (
			rec gatehouse.ActionRecord
			err error
		)
		switch op {
		case "confirm":
			rec, err = s.svc.ConfirmAction(ctx, caller, id)
		case "cancel":
			rec, err = s.svc.CancelAction(ctx, caller, id)
		case "executed":
			rec, err = s.svc.ActionExecuted(ctx, caller, id)
		case "failed":
			var body []byte
			var in failBody
			if body, err = s.readBody(w, r); err == nil {
				err = decodeStrict(body, &in)
			}
			if err == nil {
				rec, err = s.svc.ActionFailed(ctx, caller, id, in.ErrorMessage)
			}
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeJSON(w, r, http.StatusOK, rec)
	}
}

// handleActionList lists action records: an administrator sees the
// tenants it administers (a tenant admin must name one), anyone else the
// actions it requested.
func (s *Server) handleActionList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := gatehouse.ActionFilter{Tenant: q.Get("tenant"), Action: q.Get("action"),
		Status: gatehouse.ActionStatus(q.Get("status")), Subject: q.Get("subject")}
	var err error
	badQuery := func(key string, cause error) {
		if err == nil {
			err = invalid("error.bad_query", map[string]any{"Field": key}).wrap(cause)
		}
	}
	for _, p := range []struct {
		key string
		dst *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.key); v != "" {
			t, perr := time.Parse(time.RFC3339, v)
			if perr != nil {
				badQuery(p.key, perr)
			}
			*p.dst = t
		}
	}
	if v := q.Get("after"); v != "" {
		if f.AfterSeq, err = strconv.ParseInt(v, 10, 64); err != nil || f.AfterSeq < 0 {
			err = nil
			badQuery("after", fmt.Errorf("after=%q", v))
		}
	}
	if v := q.Get("limit"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 0 {
			badQuery("limit", fmt.Errorf("limit=%q", v))
		}
		f.Limit = min(n, 10000)
	}
	approvable := false
	if v := q.Get("approvable"); v != "" {
		b, perr := strconv.ParseBool(v)
		if perr != nil {
			badQuery("approvable", perr)
		}
		approvable = b
	}
	if approvable && f.Status != "" && f.Status != gatehouse.ActionPending {
		badQuery("status", fmt.Errorf("approvable with status %q", f.Status))
	}
	if f.Subject != "" {
		ref, perr := gatehouse.ParseSubject(f.Subject)
		if perr != nil {
			badQuery("subject", perr)
		}
		f.Subject = ref.String()
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	caller := callerOf(r)
	var recs []gatehouse.ActionRecord
	if approvable {
		if recs, err = s.svc.ApprovableActions(r.Context(), caller, f); err != nil {
			s.writeError(w, r, err)
			return
		}
		if id := q.Get("id"); id != "" {
			recs = slices.DeleteFunc(recs, func(rec gatehouse.ActionRecord) bool { return rec.ID != id })
		}
	} else if id := q.Get("id"); id != "" {
		rec, gerr := s.svc.GetAction(r.Context(), caller, id)
		switch {
		case errors.Is(gerr, gatehouse.ErrNotFound):
		case gerr != nil:
			s.writeError(w, r, gerr)
			return
		case matches(rec, f):
			recs = append(recs, rec)
		}
	} else if recs, err = s.svc.ListActions(r.Context(), caller, f); err != nil {
		s.writeError(w, r, err)
		return
	}
	page := actionPage{Actions: recs}
	if page.Actions == nil {
		page.Actions = []gatehouse.ActionRecord{}
	}
	want := f.Limit
	if want == 0 {
		want = 100
	}
	if len(recs) == want {
		page.Next = recs[len(recs)-1].Seq
	}
	s.writeJSON(w, r, http.StatusOK, page)
}

// actionEventsHeartbeat is how often an idle event stream sends a comment,
// so that proxies keep it open and a dead client is noticed.
const actionEventsHeartbeat = 25 * time.Second

// handleActionEvents answers GET /api/v1/actions/events with a stream of
// server-sent events: "action" ({"id", "status"}) when an action record
// the caller may see or confirm moves (the service decides), "resync"
// when the policy changed or events were lost, after which who may
// confirm what may differ. The inbox reloads its list on either. The
// stream starts with "ready" and lives outside the server's WriteTimeout.
func (s *Server) handleActionEvents(w http.ResponseWriter, r *http.Request) {
	caller := callerOf(r)
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.writeError(w, r, fmt.Errorf("action events: lift the write deadline: %w", err))
		return
	}
	ctx := r.Context()
	events := s.svc.Subscribe(ctx)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(event string, data any) bool {
		b, err := json.Marshal(data)
		if err == nil {
			_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			s.cfg.Logger.Debug("action events: write", "request_id", requestID(ctx), "err", err)
			return false
		}
		return true
	}
	if !send("ready", map[string]int64{"version": s.svc.Version()}) {
		return
	}
	heartbeat := time.NewTicker(actionEventsHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-heartbeat.C:
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case e, ok := <-events:
			if !ok {
				return
			}
			switch {
			case e.Kind == gatehouse.EventAction && e.Action != nil:
				if s.svc.ActionConcerns(caller, *e.Action) &&
					!send("action", map[string]string{"id": e.Action.ID, "status": string(e.Action.Status)}) {
					return
				}
			case e.Kind == gatehouse.EventPolicy || e.Kind == gatehouse.EventResync:
				if !send("resync", map[string]int64{"version": e.Version}) {
					return
				}
			}
		}
	}
}

// handleActionGet answers GET /api/v1/actions/{id}: for an administrator of
// the record's tenant, or the subject or user the action was for. Anyone
// else gets 404, as if there were no such record.
func (s *Server) handleActionGet(w http.ResponseWriter, r *http.Request) {
	rec, err := s.svc.GetAction(r.Context(), callerOf(r), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, rec)
}

// matches reports whether rec passes the filter's tenant, action, status
// and subject.
func matches(rec gatehouse.ActionRecord, f gatehouse.ActionFilter) bool {
	return (f.Tenant == "" || rec.Tenant == f.Tenant) && (f.Action == "" || rec.Action == f.Action) &&
		(f.Status == "" || rec.Status == f.Status) && (f.Subject == "" || rec.Subject == f.Subject)
}
