package guard

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
)

// Who may move an action record:
//
//	confirm   the customer it is for, or a holder of the action's approver permission in its tenant
//	cancel    the customer, the subject that requested it, or an approver
//	executed  the subject that requested it, or an approver
//	failed    the subject that requested it, or an approver
//
// The customer is the user an agent acted for, or the user who asked
// directly. Superusers hold every permission, so they are approvers where
// the action names an approver permission; they are never the customer.

// Confirm records that actor confirmed the pending action id.
// ErrNotApprover if actor may not, ErrActionExpired after its expiry,
// ErrIllegalTransition unless it is pending, ErrNotFound for an unknown id.
func (g *Guard) Confirm(ctx context.Context, id string, actor gatehouse.SubjectRef) (gatehouse.ActionRecord, error) {
	return g.move(ctx, id, actor, gatehouse.ActionConfirmed, "")
}

// Cancel records that actor cancelled the pending action id, releasing its
// capacity.
func (g *Guard) Cancel(ctx context.Context, id string, actor gatehouse.SubjectRef) (gatehouse.ActionRecord, error) {
	return g.move(ctx, id, actor, gatehouse.ActionCancelled, "")
}

// Executed records that the confirmed action id was carried out.
func (g *Guard) Executed(ctx context.Context, id string, actor gatehouse.SubjectRef) (gatehouse.ActionRecord, error) {
	return g.move(ctx, id, actor, gatehouse.ActionExecuted, "")
}

// maxErrorMessage bounds a failed action's error message.
const maxErrorMessage = 2000

// Failed records that the confirmed action id failed with message,
// releasing its capacity.
func (g *Guard) Failed(ctx context.Context, id string, actor gatehouse.SubjectRef, message string) (gatehouse.ActionRecord, error) {
	message = strings.TrimSpace(message)
	if message == "" {
		return gatehouse.ActionRecord{}, gatehouse.Invalidf("fail action %s: an error message is required", id)
	}
	if len(message) > maxErrorMessage {
		return gatehouse.ActionRecord{}, gatehouse.Invalidf("fail action %s: the error message is longer than %d bytes", id, maxErrorMessage)
	}
	return g.move(ctx, id, actor, gatehouse.ActionFailed, message)
}

func (g *Guard) move(ctx context.Context, id string, actor gatehouse.SubjectRef, to gatehouse.ActionStatus, message string) (gatehouse.ActionRecord, error) {
	if actor.Type == gatehouse.SubjectUser {
		actor.ID = gatehouse.NormalizeEmail(actor.ID)
	}
	now := g.now()
	rec, err := g.store.GetAction(ctx, id, now)
	if err != nil {
		return gatehouse.ActionRecord{}, err
	}
	if err := g.mayMove(rec, actor, to); err != nil {
		return gatehouse.ActionRecord{}, err
	}
	return g.store.TransitionAction(ctx, gatehouse.Transition{ID: id, To: to, Actor: actor.String(), Time: now, ErrorMessage: message})
}

// mayMove returns nil if actor may move rec to status to, else an error
// wrapping ErrNotApprover.
func (g *Guard) mayMove(rec gatehouse.ActionRecord, actor gatehouse.SubjectRef, to gatehouse.ActionStatus) error {
	who := actor.String()
	if actor.IsZero() {
		return fmt.Errorf("%s action %s: no actor: %w", to, rec.ID, gatehouse.ErrNotApprover)
	}
	customer := rec.OnBehalfOf
	if customer == "" && strings.HasPrefix(rec.Subject, string(gatehouse.SubjectUser)+":") {
		customer = rec.Subject
	}
	isCustomer := actor.Type == gatehouse.SubjectUser && actor.ID != "" && who == customer
	switch {
	case to == gatehouse.ActionConfirmed && isCustomer,
		to == gatehouse.ActionCancelled && (isCustomer || who == rec.Subject),
		(to == gatehouse.ActionExecuted || to == gatehouse.ActionFailed) && who == rec.Subject:
		return nil
	}
	if approves(g.snapshot(), actor, rec) {
		return nil
	}
	return fmt.Errorf("%s may not make action %s %s: %w", who, rec.ID, to, gatehouse.ErrNotApprover)
}

// MayConfirm reports whether actor may confirm rec now: rec is pending and
// actor is its customer or holds its action's approver permission in its
// tenant.
func (g *Guard) MayConfirm(rec gatehouse.ActionRecord, actor gatehouse.SubjectRef) bool {
	if actor.Type == gatehouse.SubjectUser {
		actor.ID = gatehouse.NormalizeEmail(actor.ID)
	}
	return rec.Status == gatehouse.ActionPending && g.mayMove(rec, actor, gatehouse.ActionConfirmed) == nil
}

// approves reports whether actor holds the approver permission of rec's
// action in rec's tenant.
func approves(snap *engine.Snapshot, actor gatehouse.SubjectRef, rec gatehouse.ActionRecord) bool {
	pol, err := snap.ActionPolicy(rec.Tenant, rec.Action)
	if err != nil || pol.Approver == "" {
		return false
	}
	return snap.Check(&gatehouse.Request{Subject: actor, Permission: pol.Approver, Tenant: rec.Tenant}).Allowed
}

// Get returns the action record id, its status as of now.
func (g *Guard) Get(ctx context.Context, id string) (gatehouse.ActionRecord, error) {
	return g.store.GetAction(ctx, id, g.now())
}

// List returns the action records matching f, statuses as of now when
// f.Now is zero.
func (g *Guard) List(ctx context.Context, f gatehouse.ActionFilter) ([]gatehouse.ActionRecord, error) {
	if f.Now.IsZero() {
		f.Now = g.now()
	}
	if f.Status != "" && !slices.Contains(gatehouse.ActionStatuses, f.Status) {
		return nil, gatehouse.Invalidf("list actions: unknown status %q", f.Status)
	}
	return g.store.ListActions(ctx, f)
}

// Now returns the guard's clock reading, as records store it.
func (g *Guard) Now() time.Time { return g.now() }
