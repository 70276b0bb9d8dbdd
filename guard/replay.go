package guard

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
)

// ReplayReport says what a proposed policy would have done to the actions
// recorded in a period: every recorded action was allowed when it was
// made, so the report counts those the proposal would deny.
type ReplayReport struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Actions is the number of recorded actions replayed.
	Actions      int `json:"actions"`
	StillAllowed int `json:"still_allowed"`
	// AllowedToDenied counts the actions the proposal denies, by reason in
	// ByReason; Examples shows the first few.
	AllowedToDenied int                      `json:"allowed_to_denied"`
	ByReason        map[gatehouse.Reason]int `json:"by_reason"`
	// NewlyConfirmed counts actions allowed at once then that would now
	// wait for a confirmation.
	NewlyConfirmed int             `json:"newly_confirmed"`
	Examples       []ReplayExample `json:"examples"`
	// Version is the proposal's policy version.
	Version int64 `json:"version"`
}

// ReplayExample is one recorded action the proposal would deny.
type ReplayExample struct {
	ActionID  string           `json:"action_id"`
	Tenant    string           `json:"tenant"`
	Action    string           `json:"action"`
	Tool      string           `json:"tool"`
	Subject   string           `json:"subject"`
	CreatedAt time.Time        `json:"created_at"`
	Reason    gatehouse.Reason `json:"reason"`
	Limit     *LimitExceeded   `json:"limit,omitempty"`
	Problem   string           `json:"problem,omitempty"`
}

// Replay decides the actions recorded from since until now again, in the
// order they were made, against proposal: the whole decision order,
// including the windows, which count the replayed actions the proposal
// allows that still hold capacity. It reserves and changes nothing. At most examples
// denials are reported in full.
func (g *Guard) Replay(ctx context.Context, proposal *engine.Snapshot, since time.Time, examples int) (ReplayReport, error) {
	if proposal == nil {
		return ReplayReport{}, gatehouse.Invalidf("replay: no proposed policy")
	}
	now := g.now()
	rep := ReplayReport{Since: since.UTC(), Until: now, ByReason: map[gatehouse.Reason]int{},
		Examples: []ReplayExample{}, Version: proposal.Version()}
	// allowed holds the replayed actions the proposal allows, per tenant and
	// action, for the windows.
	type key struct{ tenant, action string }
	allowedSoFar := map[key][]gatehouse.ActionRecord{}
	f := gatehouse.ActionFilter{Now: now, Since: since, Limit: 10000}
	for {
		page, err := g.store.ListActions(ctx, f)
		if err != nil {
			return ReplayReport{}, err
		}
		for _, rec := range page {
			rep.Actions++
			res := replayOne(proposal, rec, g.cfg.ConfirmationTTL)
			k := key{rec.Tenant, rec.Action}
			if res.Allowed {
				if lim := res.Policy.Exact; lim.Windowed() {
					count, total := usage(allowedSoFar[k], rec.CreatedAt, lim.Window)
					if exceeded := windowExceeded(lim, rec, count, total); exceeded != nil {
						res.Allowed, res.Reason, res.Limit = false, gatehouse.ReasonLimitExceeded, exceeded
					}
				}
			}
			if !res.Allowed {
				rep.AllowedToDenied++
				rep.ByReason[res.Reason]++
				if len(rep.Examples) < examples {
					rep.Examples = append(rep.Examples, ReplayExample{ActionID: rec.ID, Tenant: rec.Tenant,
						Action: rec.Action, Tool: rec.Tool, Subject: rec.Subject, CreatedAt: rec.CreatedAt,
						Reason: res.Reason, Limit: res.Limit, Problem: res.Problem})
				}
				continue
			}
			rep.StillAllowed++
			if res.RequiresConfirmation && !rec.RequiresConfirmation {
				rep.NewlyConfirmed++
			}
			if rec.Status.Holds() {
				allowedSoFar[k] = append(allowedSoFar[k], rec)
			}
		}
		if len(page) < f.Limit {
			return rep, nil
		}
		f.AfterSeq = page[len(page)-1].Seq
	}
}

// replayOne decides a recorded action against snap without the windows.
func replayOne(snap *engine.Snapshot, rec gatehouse.ActionRecord, ttl time.Duration) Result {
	req := &Request{Tenant: rec.Tenant, Tool: rec.Tool}
	var err error
	if req.Subject, err = gatehouse.ParseSubject(rec.Subject); err != nil {
		return Result{Reason: gatehouse.ReasonInvalidRequest, Problem: err.Error()}
	}
	if rec.OnBehalfOf != "" {
		if req.OnBehalfOf, err = gatehouse.ParseSubject(rec.OnBehalfOf); err != nil {
			return Result{Reason: gatehouse.ReasonInvalidRequest, Problem: err.Error()}
		}
	}
	if len(rec.Args) > 0 {
		dec := json.NewDecoder(bytes.NewReader(rec.Args))
		dec.UseNumber()
		if err := dec.Decode(&req.Args); err != nil {
			return Result{Reason: gatehouse.ReasonInvalidRequest, Problem: "stored arguments: " + err.Error()}
		}
	}
	ta, res, done := check(snap, req)
	if done {
		return res
	}
	p, res := prepare(snap, req, ta, res, rec.Args, rec.Fingerprint, rec.CreatedAt, ttl)
	if p == nil {
		return res
	}
	if p.exceeded != nil {
		res.Reason, res.Limit = gatehouse.ReasonLimitExceeded, p.exceeded
		return res
	}
	return allowed(res, p.record)
}

// usage counts the records of recs created within window before at.
func usage(recs []gatehouse.ActionRecord, at time.Time, window time.Duration) (count, total int64) {
	from := at.Add(-window)
	for _, r := range recs {
		if r.CreatedAt.After(from) && !r.CreatedAt.After(at) {
			count++
			total += r.Amount
		}
	}
	return count, total
}
