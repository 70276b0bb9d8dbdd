package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/money"
	"github.com/gatehouse/gatehouse/service"
)

// The agent loop. A turn advances a thread until the assistant has
// answered or a tool call waits for a human: it settles the tool calls of
// the newest assistant message that have no result yet, then asks the
// model again. Everything it does is stored as messages first, so a turn
// cut short (a restart, a confirmation that takes a day) is resumed from
// the thread alone.

// release ends thread's turn; it reports whether the thread should be
// advanced again (something happened while the turn finished), in which
// case the turn stays claimed.
func (e *Engine) release(thread string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.turns[thread]
	if st != nil && st.again {
		st.again = false
		return true
	}
	delete(e.turns, thread)
	return false
}

// wake advances thread as actor a: now if no turn runs, else right after
// the running one. One turn runs per thread at a time.
func (e *Engine) wake(t gatehouse.Thread, a Actor) {
	e.mu.Lock()
	if st, ok := e.turns[t.ID]; ok {
		st.again = true
		e.mu.Unlock()
		return
	}
	e.turns[t.ID] = &turnState{}
	e.mu.Unlock()
	e.startTurn(t, a)
}

// startTurn runs the claimed thread's turn in the background.
func (e *Engine) startTurn(t gatehouse.Thread, a Actor) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			e.advance(e.ctx, t, a)
			if e.ctx.Err() != nil || !e.release(t.ID) {
				return
			}
		}
	}()
}

// emit sends ev to the sessions that watch thread.
func (e *Engine) emit(thread string, ev Event) {
	e.mu.Lock()
	var to []*Session
	for s := range e.sessions {
		if s.watches(thread) {
			to = append(to, s)
		}
	}
	e.mu.Unlock()
	for _, s := range to {
		s.send(ev)
	}
}

func (e *Engine) status(thread, typ, msgID, lang string) {
	e.emit(thread, Event{Type: typ, Data: StatusData{ThreadID: thread, Status: e.text(lang, msgID, nil)}})
}

// advance runs the thread's turn until the assistant answered, the turn
// waits for a confirmation, or something failed. A turn that finds
// nothing to do says nothing.
func (e *Engine) advance(ctx context.Context, t gatehouse.Thread, a Actor) {
	started := false
	start := func() {
		if !started {
			started = true
			e.status(t.ID, EventAgentStarted, "chat.agent.started", a.Lang)
		}
	}
	for ctx.Err() == nil {
		msgs, err := e.recent(ctx, t.ID)
		if err != nil {
			e.fail(t, a, gatehouse.ReasonInternalError, "chat.failed", fmt.Errorf("read messages: %w", err))
			return
		}
		fresh, pending, calls := unsettled(msgs)
		progressed, waiting, err := e.settle(ctx, t, a, fresh, pending, calls, start)
		switch {
		case err != nil:
			e.fail(t, a, gatehouse.ReasonInternalError, "chat.failed", err)
			return
		case progressed:
			continue
		}
		last := gatehouse.Message{Role: gatehouse.RoleAssistant}
		if len(msgs) > 0 {
			last = msgs[len(msgs)-1]
		}
		switch {
		case last.Role == gatehouse.RoleTool && last.Status == gatehouse.ToolCallPending, waiting && last.Role != gatehouse.RoleUser:
			if started {
				e.status(t.ID, EventAgentWaiting, "chat.agent.waiting", a.Lang)
			}
			return
		case last.Role == gatehouse.RoleAssistant:
			if started {
				e.status(t.ID, EventAgentCompleted, "chat.agent.completed", a.Lang)
			}
			return
		case calls > e.cfg.MaxToolCalls && last.Role == gatehouse.RoleTool:
			start()
			e.fail(t, a, gatehouse.ReasonInvalidRequest, "chat.tool_limit", fmt.Errorf("the model made %d tool calls in one turn", calls))
			return
		}
		start()
		if err := e.think(ctx, t, a, msgs); err != nil {
			e.fail(t, a, gatehouse.ReasonInternalError, "chat.model_failed", err)
			return
		}
	}
}

// recent returns the thread's newest Config.History messages: what the
// model reads and where the turn looks for calls to settle. Seqs are
// consecutive, so the window is one indexed read however long the thread.
func (e *Engine) recent(ctx context.Context, thread string) ([]gatehouse.Message, error) {
	t, err := e.cfg.Threads.GetThread(ctx, thread)
	if err != nil {
		return nil, err
	}
	return e.cfg.Threads.Messages(ctx, thread, max(t.LastSeq-int64(e.cfg.History), 0), 0)
}

// fail ends a turn with agent.failed and a log line.
func (e *Engine) fail(t gatehouse.Thread, a Actor, reason gatehouse.Reason, msgID string, err error) {
	if e.ctx.Err() != nil {
		return
	}
	e.cfg.Logger.Warn("chat: turn failed", "thread", t.ID, "tenant", t.Tenant, "err", err)
	e.emit(t.ID, Event{Type: EventAgentFailed, Data: StatusData{ThreadID: t.ID, Status: e.text(a.Lang, "chat.agent.failed", nil),
		Error: e.text(a.Lang, msgID, map[string]int{"Max": e.cfg.MaxToolCalls}), Reason: string(reason)}})
}

// pendingCall is a tool call waiting for its action's confirmation.
type pendingCall struct {
	call     gatehouse.ToolCall
	actionID string
}

// unsettled returns the tool calls of the newest assistant message that
// have no result at all (fresh: a turn cut short before it decided them),
// the calls of msgs whose only result is pending (waiting
// for a confirmation, in order), and how many tool calls the current turn
// (since the newest user message) made.
func unsettled(msgs []gatehouse.Message) (fresh []gatehouse.ToolCall, pending []pendingCall, calls int) {
	final := map[string]bool{}
	waiting := map[string]string{}
	for _, m := range msgs {
		if m.Role != gatehouse.RoleTool {
			continue
		}
		if m.Status == gatehouse.ToolCallPending {
			waiting[m.ToolCallID] = m.ActionID
		} else {
			final[m.ToolCallID] = true
		}
	}
	newest := -1
	user := false
	for i := len(msgs) - 1; i >= 0; i-- {
		switch msgs[i].Role {
		case gatehouse.RoleUser:
			user = true
		case gatehouse.RoleAssistant:
			if newest < 0 && !user {
				newest = i
			}
			if !user {
				calls += len(msgs[i].ToolCalls)
			}
		}
	}
	for i, m := range msgs {
		for _, c := range m.ToolCalls {
			switch id, ok := waiting[c.ID]; {
			case final[c.ID]:
			case ok:
				pending = append(pending, pendingCall{call: c, actionID: id})
			case i == newest:
				fresh = append(fresh, c)
			}
		}
	}
	return fresh, pending, calls
}

// settle decides and runs the fresh tool calls and settles the pending
// ones whose confirmation came; progressed reports that it stored a
// result, waiting that a call still waits for a human.
func (e *Engine) settle(ctx context.Context, t gatehouse.Thread, a Actor, fresh []gatehouse.ToolCall, pending []pendingCall, calls int, start func()) (progressed, waiting bool, err error) {
	var results []gatehouse.Message
	for _, p := range pending {
		m, still := e.confirmed(ctx, t, a, p.call, p.actionID)
		if still {
			waiting = true
			continue
		}
		start()
		results = append(results, m)
	}
	// Calls beyond the cap, counted over the whole turn, are refused.
	allowed := max(len(fresh)-(calls-e.cfg.MaxToolCalls), 0)
	for i, c := range fresh {
		start()
		if i >= allowed {
			results = append(results, e.refuse(t, a, c, gatehouse.ReasonInvalidRequest,
				e.text(a.Lang, "chat.tool_limit", map[string]int{"Max": e.cfg.MaxToolCalls}), "", ""))
			continue
		}
		results = append(results, e.call(ctx, t, a, c))
	}
	for i := range results {
		if err := e.store(ctx, t, &results[i]); err != nil {
			return false, false, err
		}
		if results[i].Status == gatehouse.ToolCallPending {
			waiting = true
		}
	}
	return len(results) > 0, waiting, nil
}

// store appends a message to t and tells the thread's watchers.
func (e *Engine) store(ctx context.Context, t gatehouse.Thread, m *gatehouse.Message) error {
	m.ID, m.ThreadID, m.CreatedAt = newID("msg_"), t.ID, e.cfg.Decider.Now()
	msgs := []gatehouse.Message{*m}
	if err := e.cfg.Threads.AppendMessages(ctx, msgs); err != nil {
		return fmt.Errorf("store %s message: %w", m.Role, err)
	}
	*m = msgs[0]
	e.emit(t.ID, Event{Type: EventMessage, Data: MessageData{Message: *m}})
	return nil
}

// think asks the model for the next assistant message, streaming its
// text, and stores it.
func (e *Engine) think(ctx context.Context, t gatehouse.Thread, a Actor, msgs []gatehouse.Message) error {
	tools, err := e.tools(ctx, a)
	if err != nil {
		return err
	}
	history, err := e.history(ctx, msgs)
	if err != nil {
		return err
	}
	e.status(t.ID, EventAgentRunning, "chat.agent.running", a.Lang)
	mctx, cancel := context.WithTimeout(ctx, e.cfg.ModelTimeout)
	defer cancel()
	reply, err := e.cfg.Model.Complete(mctx, ModelRequest{System: e.cfg.System, Messages: history, Tools: tools}, func(s string) {
		e.emit(t.ID, Event{Type: EventToken, Data: TokenData{ThreadID: t.ID, Text: s}})
	})
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	m := gatehouse.Message{Role: gatehouse.RoleAssistant, Content: reply.Content}
	seen := map[string]bool{}
	for _, old := range msgs {
		for _, c := range old.ToolCalls {
			seen[c.ID] = true
		}
	}
	for i, c := range reply.ToolCalls {
		// A model's ids are its own: make them present and unique in the
		// thread, since results are matched to calls by id.
		if c.ID == "" || seen[c.ID] {
			c.ID = fmt.Sprintf("call_%d_%s", i, newID(""))
		}
		seen[c.ID] = true
		if c.Name == "" {
			c.Name = "unnamed"
		}
		if len(c.Arguments) > 0 && !json.Valid(c.Arguments) {
			// Kept, as text, so that the refusal can say what was wrong.
			c.Arguments, _ = json.Marshal(string(c.Arguments))
		}
		m.ToolCalls = append(m.ToolCalls, c)
	}
	if m.Content == "" && len(m.ToolCalls) == 0 {
		return errors.New("model: an empty reply")
	}
	return e.store(ctx, t, &m)
}

// tools are the tools the model may call for a: the executor's tools the
// one door lets a call in a's tenant. A denied tool is never advertised.
func (e *Engine) tools(ctx context.Context, a Actor) ([]ToolSpec, error) {
	specs := e.cfg.Executor.Tools()
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	ok, err := e.cfg.Decider.CallableTools(ctx, a.Caller, a.subject(), gatehouse.SubjectRef{}, a.Tenant, names)
	if err != nil {
		return nil, fmt.Errorf("callable tools: %w", err)
	}
	var out []ToolSpec
	for _, s := range specs {
		if slices.Contains(ok, s.Name) {
			out = append(out, s)
		}
	}
	return out, nil
}

// history is the newest messages the model reads, attachments' names and
// text inlined into the user messages that carry them.
func (e *Engine) history(ctx context.Context, msgs []gatehouse.Message) ([]gatehouse.Message, error) {
	if len(msgs) > e.cfg.History {
		msgs = msgs[len(msgs)-e.cfg.History:]
	}
	// Every tool call the model made gets exactly one result: the final
	// one, else the pending one (which tells it a human must confirm).
	final := map[string]bool{}
	for _, m := range msgs {
		if m.Role == gatehouse.RoleTool && m.Status != gatehouse.ToolCallPending {
			final[m.ToolCallID] = true
		}
	}
	out := make([]gatehouse.Message, 0, len(msgs))
	for _, m := range msgs {
		if m.Role == gatehouse.RoleTool && m.Status == gatehouse.ToolCallPending && final[m.ToolCallID] {
			continue
		}
		for _, id := range m.Attachments {
			att, err := e.cfg.Threads.GetAttachment(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("read attachment %s: %w", id, err)
			}
			m.Content += fmt.Sprintf("\n\n[attachment %q, %s, %d bytes]", att.Name, att.MIME, att.Size)
			if textLike(att.MIME) {
				m.Content += "\n" + truncate(string(att.Data), 64<<10)
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// question is the one door's question for call c in t.
func (e *Engine) question(t gatehouse.Thread, a Actor, c gatehouse.ToolCall, args map[string]any) gatehouse.Question {
	return gatehouse.Question{Request: gatehouse.Request{Subject: a.subject(), Tenant: t.Tenant}, Tool: c.Name, Args: args,
		Lang: a.Lang, Surface: "chat", RequestID: a.RequestID, Conversation: t.ID}
}

// call decides tool call c through the one door and runs it when allowed.
func (e *Engine) call(ctx context.Context, t gatehouse.Thread, a Actor, c gatehouse.ToolCall) gatehouse.Message {
	args, ok := arguments(c.Arguments)
	q := e.question(t, a, c, args)
	if !ok {
		q.Problem = "the arguments are not a JSON object"
	}
	action := ""
	_, infos := e.cfg.Decider.Tools()
	for _, ti := range infos {
		if ti.Name == c.Name {
			action = ti.Action
		}
	}
	var ans gatehouse.Answer
	var err error
	if action != "" && ok {
		ans, err = e.cfg.Decider.AuthorizeToolCall(ctx, a.Caller, q, "chat:"+t.ID+":"+c.ID)
	} else {
		ans, err = e.cfg.Decider.Evaluate(ctx, a.Caller, q)
	}
	switch {
	case err != nil:
		e.cfg.Logger.Error("chat: decide tool call", "tool", c.Name, "thread", t.ID, "err", err)
		return e.refuse(t, a, c, gatehouse.ReasonInternalError, e.cfg.Catalog.Error(a.Lang, err), "", "")
	case !ok:
		return e.refuse(t, a, c, gatehouse.ReasonInvalidRequest, e.text(a.Lang, "chat.tool_bad_arguments", map[string]string{"Tool": c.Name}), "", "")
	case !ans.Allowed:
		return e.refuseAnswer(t, a, c, ans)
	case ans.Status == gatehouse.ActionPending:
		e.observe(c.Name, "pending")
		e.emit(t.ID, Event{Type: EventConfirmationRequired, Data: ConfirmationData{ActionID: ans.ActionID, Action: ans.Action,
			ToolName: c.Name, Summary: e.summary(ctx, a, t, ans, args), Status: ans.Status, ConversationID: t.ID, ExpiresAt: ans.ExpiresAt}})
		return gatehouse.Message{Role: gatehouse.RoleTool, ToolCallID: c.ID, ToolName: c.Name, Status: gatehouse.ToolCallPending,
			ActionID: ans.ActionID, Reason: ans.Reason, Content: ans.Message}
	}
	return e.execute(ctx, t, a, c, ans.ActionID)
}

// arguments decodes a tool call's arguments, numbers as json.Number; ok
// is false unless they are a JSON object (or absent).
func arguments(raw json.RawMessage) (map[string]any, bool) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return nil, true
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var args map[string]any
	if err := dec.Decode(&args); err != nil || dec.More() {
		return nil, false
	}
	return args, args != nil
}

// refuseAnswer is the result of a call the one door denied.
func (e *Engine) refuseAnswer(t gatehouse.Thread, a Actor, c gatehouse.ToolCall, ans gatehouse.Answer) gatehouse.Message {
	perm := ans.DeniedPermission
	text := ans.Message
	switch ans.Reason {
	case gatehouse.ReasonPermissionMissing, gatehouse.ReasonConditionFailed, gatehouse.ReasonTenantNotVisible, gatehouse.ReasonPlanRequired:
		text = e.text(a.Lang, "chat.tool_denied", map[string]string{"Permission": perm})
		if ans.Reason == gatehouse.ReasonPlanRequired {
			text += ". " + ans.Message
		}
	case gatehouse.ReasonUnknownPermission:
		text = e.text(a.Lang, "chat.tool_unknown", map[string]string{"Tool": c.Name})
	}
	return e.refuse(t, a, c, ans.Reason, text, perm, ans.ActionID)
}

// refuse tells the watchers that call c was refused and returns the
// refusal the model reads.
func (e *Engine) refuse(t gatehouse.Thread, a Actor, c gatehouse.ToolCall, reason gatehouse.Reason, text, perm, actionID string) gatehouse.Message {
	e.observe(c.Name, "denied")
	e.emit(t.ID, Event{Type: EventToolError, Data: ToolErrorData{ToolName: c.Name, ToolCallID: c.ID, Error: text, Reason: string(reason),
		Permission: perm, ConversationID: t.ID, ActionID: actionID}})
	return gatehouse.Message{Role: gatehouse.RoleTool, ToolCallID: c.ID, ToolName: c.Name, Status: gatehouse.ToolCallDenied,
		Reason: reason, ActionID: actionID, Content: text}
}

// ToolOutcomes are the outcomes a tool call is counted under.
var ToolOutcomes = []string{"allowed", "denied", "pending", "failed"}

// ToolCalls returns how many tool calls had outcome (one of ToolOutcomes)
// since the engine started.
func (e *Engine) ToolCalls(outcome string) int64 {
	if i := slices.Index(ToolOutcomes, outcome); i >= 0 {
		return e.outcomes[i].Load()
	}
	return 0
}

func (e *Engine) observe(tool, outcome string) {
	if i := slices.Index(ToolOutcomes, outcome); i >= 0 {
		e.outcomes[i].Add(1)
	}
	if e.cfg.OnToolCall != nil {
		e.cfg.OnToolCall(tool, outcome)
	}
}

// execute runs an allowed call, records it in the audit trail and, for an
// agent action, records it executed or failed.
func (e *Engine) execute(ctx context.Context, t gatehouse.Thread, a Actor, c gatehouse.ToolCall, actionID string) gatehouse.Message {
	start := e.cfg.Decider.Now()
	xctx, cancel := context.WithTimeout(ctx, e.cfg.ToolTimeout)
	out, err := e.cfg.Executor.Execute(xctx, Call{Tool: c.Name, Arguments: c.Arguments, Tenant: t.Tenant, Subject: a.subject().String(),
		ConversationID: t.ID, ActionID: actionID})
	cancel()
	rec := service.ToolCall{Surface: "chat", Tool: c.Name, Tenant: t.Tenant, ActionID: actionID, Conversation: t.ID, Status: "ok",
		LatencyUS: e.cfg.Decider.Now().Sub(start).Microseconds()}
	if err != nil {
		rec.Status = "failed"
	}
	e.cfg.Decider.RecordToolCall(ctx, a.Caller, rec)
	if actionID != "" {
		var moveErr error
		if err == nil {
			_, moveErr = e.cfg.Decider.ActionExecuted(ctx, a.Caller, actionID)
		} else {
			_, moveErr = e.cfg.Decider.ActionFailed(ctx, a.Caller, actionID, err.Error())
		}
		if moveErr != nil {
			e.cfg.Logger.Error("chat: record the action's outcome", "action", actionID, "err", moveErr)
		}
	}
	if err != nil {
		e.observe(c.Name, "failed")
		e.cfg.Logger.Warn("chat: tool failed", "tool", c.Name, "thread", t.ID, "err", err)
		text := e.text(a.Lang, "chat.tool_failed", map[string]string{"Tool": c.Name})
		e.emit(t.ID, Event{Type: EventToolError, Data: ToolErrorData{ToolName: c.Name, ToolCallID: c.ID, Error: text,
			Reason: string(gatehouse.ReasonInternalError), ConversationID: t.ID, ActionID: actionID}})
		return gatehouse.Message{Role: gatehouse.RoleTool, ToolCallID: c.ID, ToolName: c.Name, Status: gatehouse.ToolCallDone,
			Reason: gatehouse.ReasonInternalError, ActionID: actionID, Content: text}
	}
	e.observe(c.Name, "allowed")
	e.emit(t.ID, Event{Type: EventToolResult, Data: ToolResultData{ToolName: c.Name, ToolCallID: c.ID, ConversationID: t.ID, ActionID: actionID}})
	return gatehouse.Message{Role: gatehouse.RoleTool, ToolCallID: c.ID, ToolName: c.Name, Status: gatehouse.ToolCallDone,
		ActionID: actionID, Content: out}
}

// confirmed settles a call waiting for its action's confirmation: run it
// once confirmed, refuse it once cancelled or expired; still reports that
// it is pending yet.
func (e *Engine) confirmed(ctx context.Context, t gatehouse.Thread, a Actor, c gatehouse.ToolCall, actionID string) (m gatehouse.Message, still bool) {
	rec, err := e.cfg.Decider.GetAction(ctx, a.Caller, actionID)
	if err != nil {
		e.cfg.Logger.Error("chat: read action", "action", actionID, "err", err)
		return gatehouse.Message{}, true
	}
	switch rec.Status {
	case gatehouse.ActionPending:
		return gatehouse.Message{}, true
	case gatehouse.ActionConfirmed:
		e.emit(t.ID, Event{Type: EventConfirmation, Data: ConfirmationData{ActionID: rec.ID, Action: rec.Action, ToolName: c.Name,
			Status: rec.Status, ConversationID: t.ID}})
		return e.execute(ctx, t, a, c, rec.ID), false
	}
	e.emit(t.ID, Event{Type: EventConfirmation, Data: ConfirmationData{ActionID: rec.ID, Action: rec.Action, ToolName: c.Name,
		Status: rec.Status, ConversationID: t.ID}})
	return e.refuse(t, a, c, gatehouse.ReasonConfirmationRequired,
		e.text(a.Lang, "chat.confirm_cancelled", map[string]string{"Status": string(rec.Status)}), "", rec.ID), false
}

// summary is the human-readable question of a confirmation: the action's
// label in a's language, its amount or percentage, and its other
// arguments.
func (e *Engine) summary(ctx context.Context, a Actor, t gatehouse.Thread, ans gatehouse.Answer, args map[string]any) string {
	label := ans.Action
	if _, pols, err := e.cfg.Decider.TenantActions(t.Tenant, ans.Action, a.Lang); err == nil && len(pols) == 1 && pols[0].Label != "" {
		label = pols[0].Label
	}
	var details []string
	if rec, err := e.cfg.Decider.GetAction(ctx, a.Caller, ans.ActionID); err == nil {
		if rec.Currency != "" {
			details = append(details, money.FormatAmount(rec.Amount, rec.Currency)+" "+rec.Currency)
		}
		if rec.Percentage != 0 {
			details = append(details, money.FormatPercent(rec.Percentage)+" %")
		}
	}
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "amount", "currency", "percentage":
			continue
		}
		switch v := args[k].(type) {
		case string, json.Number, bool:
			details = append(details, fmt.Sprintf("%s %v", k, v))
		}
	}
	return e.text(a.Lang, "chat.confirm_summary", map[string]string{"Action": label, "Details": strings.Join(details, ", ")})
}

// actionMoved resumes the conversation of a chat's agent action that was
// confirmed, cancelled or expired.
func (e *Engine) actionMoved(rec gatehouse.ActionRecord) {
	thread, ok := chatThread(rec.IdempotencyKey)
	if !ok || rec.Status == gatehouse.ActionPending {
		return
	}
	t, err := e.cfg.Threads.GetThread(e.ctx, thread)
	if err != nil {
		if !errors.Is(err, gatehouse.ErrNotFound) {
			e.cfg.Logger.Warn("chat: resume after a confirmation", "thread", thread, "err", err)
		}
		return
	}
	e.resume(t)
}

// chatThread returns the thread of a chat's idempotency key
// "chat:THREAD:CALL".
func chatThread(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, "chat:")
	if !ok {
		return "", false
	}
	thread, _, ok := strings.Cut(rest, ":")
	return thread, ok && thread != ""
}

// resume advances t as its owner.
func (e *Engine) resume(t gatehouse.Thread) {
	owner, err := gatehouse.ParseSubject(t.Owner)
	if err != nil {
		e.cfg.Logger.Error("chat: thread owner", "thread", t.ID, "owner", t.Owner, "err", err)
		return
	}
	e.wake(t, Actor{Caller: gatehouse.Caller{Subject: owner, Credential: gatehouse.CredentialToken, Tenant: t.Tenant},
		Tenant: t.Tenant, Lang: e.lang(t.ID)})
}

// resumeIfSettled resumes t if a tool call waits for an action: it may
// have been confirmed while no turn ran (another instance, a restart).
func (e *Engine) resumeIfSettled(t gatehouse.Thread, msgs []gatehouse.Message) {
	if _, pending, _ := unsettled(msgs); len(pending) > 0 {
		e.resume(t)
	}
}
