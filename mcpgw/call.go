package mcpgw

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// Keys of the gateway in MCP _meta maps.
const (
	// MetaReason is a denial's stable reason code.
	MetaReason = "io.gatehouse/reason"
	// MetaActionID is the agent action a result is about; a client sends it
	// back in a call's _meta to carry out an action confirmed elsewhere.
	MetaActionID = "io.gatehouse/action_id"
	// MetaIdempotencyKey, in a call's _meta, makes a retried call of an
	// agent action reserve its limits once.
	MetaIdempotencyKey = "io.gatehouse/idempotency_key"
	// confirmInput is the id of the confirmation's input request.
	confirmInput = "gatehouse_confirm"
)

// handler decides and forwards calls of t for id.
func (g *Gateway) handler(id identity, t exposed) mcp.ToolHandler {
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return g.call(ctx, id, t, req), nil
	}
}

// call decides one tools/call through the one door and, when allowed,
// forwards it to the upstream. It never returns a protocol error for a
// decision: a denial is a result with isError and the reason, so that the
// model can explain it.
func (g *Gateway) call(ctx context.Context, id identity, t exposed, req *mcp.CallToolRequest) *mcp.CallToolResult {
	raw := req.Params.Arguments
	q := gatehouse.Question{Request: gatehouse.Request{Subject: id.caller.Subject, Tenant: id.tenant},
		Lang: id.lang, Surface: "mcp"}
	if t.tool != "" {
		q.Tool = t.tool
	} else {
		q.Permission = t.permission
	}
	args, problem := g.arguments(raw)
	if problem != "" {
		q.Problem = problem
	}
	q.Args = args
	if t.action == "" {
		a, err := g.svc.Evaluate(ctx, id.caller, q)
		if err != nil || !a.Allowed {
			return g.denied(id, a, err)
		}
		return g.forward(ctx, id, t, raw, "")
	}
	// A call that resumes a confirmation, or carries out an action
	// confirmed elsewhere, names its action.
	if state := req.Params.RequestState; state != "" {
		return g.resume(ctx, id, t, req, q, state)
	}
	if actionID, _ := req.Params.Meta[MetaActionID].(string); actionID != "" {
		rec, res := g.ownAction(ctx, id, t, q, actionID)
		if res != nil {
			return res
		}
		if rec.Status != gatehouse.ActionConfirmed {
			return g.textError(id, gatehouse.ReasonConfirmationRequired, fmt.Sprintf("action %s is %s, not confirmed", rec.ID, rec.Status), rec.ID)
		}
		return g.forward(ctx, id, t, raw, rec.ID)
	}
	key, _ := req.Params.Meta[MetaIdempotencyKey].(string)
	a, err := g.svc.AuthorizeToolCall(ctx, id.caller, q, key)
	switch {
	case err != nil || !a.Allowed:
		return g.denied(id, a, err)
	case a.Status == gatehouse.ActionPending:
		if caps := req.ClientCapabilities(); caps != nil && caps.Elicitation != nil {
			return &mcp.CallToolResult{
				InputRequests: mcp.InputRequestMap{confirmInput: &mcp.ElicitParams{
					Mode:    "form",
					Message: a.Message,
					RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{
						"confirm": map[string]any{"type": "boolean", "title": "Confirm", "description": a.Message, "default": false},
					}, "required": []string{"confirm"}},
				}},
				RequestState: a.ActionID,
			}
		}
		// The client cannot ask the user: fail closed, and say how to confirm.
		return g.textError(id, gatehouse.ReasonConfirmationRequired, fmt.Sprintf(
			"%s Confirm it with POST /api/v1/actions/%s/confirm, then call the tool again with _meta %q: %q.",
			a.Message, a.ActionID, MetaActionID, a.ActionID), a.ActionID)
	}
	return g.forward(ctx, id, t, raw, a.ActionID)
}

// arguments decodes a call's arguments, numbers as json.Number; it returns
// what is wrong with them, or "".
func (g *Gateway) arguments(raw json.RawMessage) (map[string]any, string) {
	if len(raw) > g.cfg.MaxArgumentBytes {
		return nil, fmt.Sprintf("the arguments are larger than %d bytes", g.cfg.MaxArgumentBytes)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, ""
	}
	if raw[0] != '{' {
		return nil, "the arguments must be a JSON object"
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var args map[string]any
	if err := dec.Decode(&args); err != nil {
		return nil, "the arguments are not valid JSON: " + err.Error()
	}
	return args, ""
}

// resume continues a call whose confirmation the client asked the user
// for: accepted, the action is confirmed and carried out; declined or
// cancelled, it is cancelled.
func (g *Gateway) resume(ctx context.Context, id identity, t exposed, req *mcp.CallToolRequest, q gatehouse.Question, actionID string) *mcp.CallToolResult {
	rec, res := g.ownAction(ctx, id, t, q, actionID)
	if res != nil {
		return res
	}
	answer, _ := req.Params.InputResponses[confirmInput].(*mcp.ElicitResult)
	accepted := answer != nil && answer.Action == "accept"
	if accepted {
		if c, ok := answer.Content["confirm"].(bool); ok && !c {
			accepted = false
		}
	}
	if !accepted {
		if _, err := g.svc.CancelAction(ctx, id.caller, rec.ID); err != nil {
			return g.failure(id, err, rec.ID)
		}
		return g.textError(id, gatehouse.ReasonConfirmationRequired, fmt.Sprintf("Action %s was not confirmed; it is cancelled.", rec.ID), rec.ID)
	}
	if _, err := g.svc.ConfirmAction(ctx, id.caller, rec.ID); err != nil {
		return g.failure(id, err, rec.ID)
	}
	return g.forward(ctx, id, t, req.Params.Arguments, rec.ID)
}

// ownAction returns the action record actionID if it is id's pending or
// confirmed call of t with the same arguments; otherwise the result to
// answer. A client cannot carry out someone else's action, another tool's,
// or other arguments under a confirmed action's id.
func (g *Gateway) ownAction(ctx context.Context, id identity, t exposed, q gatehouse.Question, actionID string) (gatehouse.ActionRecord, *mcp.CallToolResult) {
	rec, err := g.svc.GetAction(ctx, id.caller, actionID)
	if err != nil {
		return rec, g.failure(id, err, actionID)
	}
	args, err := json.Marshal(q.Args)
	if q.Args == nil {
		args = nil
	}
	if err != nil || rec.Subject != id.caller.Subject.String() || rec.Tool != t.tool || !bytes.Equal(args, rec.Args) {
		return rec, g.textError(id, gatehouse.ReasonInvalidRequest, fmt.Sprintf("action %s is not this call", actionID), "")
	}
	return rec, nil
}

// forward calls the upstream tool and, for an agent action, records that
// it was executed or failed. The upstream's result is returned as it is.
func (g *Gateway) forward(ctx context.Context, id identity, t exposed, raw json.RawMessage, actionID string) *mcp.CallToolResult {
	start := time.Now()
	res, err := t.up.call(ctx, t.upstreamTool, raw, g.cfg.CallTimeout)
	rec := service.ToolCall{Surface: "mcp", Tool: t.name, Upstream: t.up.cfg.Name, Tenant: id.tenant, ActionID: actionID,
		Status: "ok", LatencyUS: time.Since(start).Microseconds()}
	switch {
	case err != nil:
		rec.Status = "failed"
	case res.IsError:
		rec.Status = "error"
	}
	g.svc.RecordToolCall(ctx, id.caller, rec)
	if actionID != "" {
		var moveErr error
		if rec.Status == "ok" {
			_, moveErr = g.svc.ActionExecuted(ctx, id.caller, actionID)
		} else {
			msg := "the upstream tool reported an error"
			if err != nil {
				msg = err.Error()
			}
			_, moveErr = g.svc.ActionFailed(ctx, id.caller, actionID, msg)
		}
		if moveErr != nil {
			g.opts.Logger.Error("mcp gateway: record the action's outcome", "action", actionID, "err", moveErr)
		}
	}
	if err != nil {
		g.opts.Logger.Warn("mcp gateway: upstream call failed", "tool", t.name, "upstream", t.up.cfg.Name, "err", err)
		return g.textError(id, gatehouse.ReasonInternalError, g.opts.Catalog.Text(id.lang, "mcp.upstream_failed", map[string]string{"Tool": t.name}), actionID)
	}
	return res
}

// denied is the result of a denial, or of a question the service refused.
func (g *Gateway) denied(id identity, a gatehouse.Answer, err error) *mcp.CallToolResult {
	if err != nil {
		return g.failure(id, err, "")
	}
	text := a.Message
	if a.Problem != "" {
		text += " (" + a.Problem + ")"
	}
	res := g.textError(id, a.Reason, text, a.ActionID)
	if a.Limit != nil {
		res.Meta["io.gatehouse/limit"] = a.Limit
	}
	return res
}

// failure is the result of an error: its localized message and code.
func (g *Gateway) failure(id identity, err error, actionID string) *mcp.CallToolResult {
	reason := gatehouse.ReasonInternalError
	if errors.Is(err, gatehouse.ErrInvalid) || errors.Is(err, gatehouse.ErrNotFound) {
		reason = gatehouse.ReasonInvalidRequest
	}
	return g.textError(id, reason, g.opts.Catalog.Error(id.lang, err)+" ("+gatehouse.ErrorCode(err)+")", actionID)
}

// textError is an isError result with text and the reason in _meta.
func (g *Gateway) textError(_ identity, reason gatehouse.Reason, text, actionID string) *mcp.CallToolResult {
	res := &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: text + " [" + string(reason) + "]"}},
		Meta: mcp.Meta{MetaReason: string(reason)}}
	if actionID != "" {
		res.Meta[MetaActionID] = actionID
	}
	return res
}
