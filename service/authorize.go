package service

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
)

// Who may change what. A change whose context carries a caller
// (gatehouse.NewContext: every REST write) is authorized inside the same
// Update that commits it, against the policy it changes, so that no
// concurrent change can slip between the check and the write:
//
//	global administrator  anything (the last-superuser guard still holds)
//	tenant administrator  within the subtrees it administers: create a tenant
//	                      under one of its tenants (without a plan), change a
//	                      tenant (its plan is billing's; it moves only between
//	                      its tenants; its action policies are its own), delete
//	                      a tenant below the top of its reach, and add or remove
//	                      a user's or agent's role assignments and direct
//	                      grants scoped to its tenants
//	anyone else           nothing
//
// A change without a caller in its context is the operator's (the CLI) or
// the system's (billing, bootstrap).

// authorizeChanges returns nil if the caller of ctx, if any, may make
// changes to before, the stored policy kept at its version. The caller
// holds mu.
func (s *Service) authorizeChanges(ctx context.Context, before *versioned, changes []gatehouse.Change) error {
	caller, ok := gatehouse.CallerFromContext(ctx)
	if !ok || len(changes) == 0 {
		return nil
	}
	snap := s.Snapshot()
	if snap.Version() != before.v {
		// Another instance wrote since this one's snapshot: decide on the
		// policy being changed.
		var err error
		if snap, err = engine.Compile(before.policy(), before.v); err != nil {
			return fmt.Errorf("authorize change: %w", err)
		}
	}
	scope, err := adminScope(snap, caller)
	if err != nil {
		return err
	}
	if scope.Global {
		return nil
	}
	for _, c := range changes {
		if err := scope.allows(c); err != nil {
			return err
		}
	}
	return nil
}

// allows returns nil if a tenant administrator with scope a may make c.
func (a AdminScope) allows(c gatehouse.Change) error {
	switch c.Kind {
	case gatehouse.KindTenant:
		return a.allowsTenant(c)
	case gatehouse.KindUser, gatehouse.KindAgent:
		return a.allowsBindings(c)
	}
	return outside("a tenant admin changes only tenants and bindings, not %s %q", c.Kind, c.ID)
}

func (a AdminScope) allowsTenant(c gatehouse.Change) error {
	var before, after gatehouse.Tenant
	if err := decodeChange(c, &before, &after); err != nil {
		return err
	}
	switch c.Op() {
	case gatehouse.OpCreate:
		if !a.Covers(after.Parent) {
			return outside("new tenant %q must have a parent among the caller's tenants", c.ID)
		}
		if after.Plan != "" {
			return outside("a tenant admin cannot set the plan of %q", c.ID)
		}
	case gatehouse.OpDelete:
		if !a.Covers(c.ID) {
			return outside("tenant %q is outside the caller's tenants", c.ID)
		}
		if !a.Covers(before.Parent) {
			return outside("a tenant admin cannot delete %q, the top of its tenants", c.ID)
		}
	default:
		if !a.Covers(c.ID) {
			return outside("tenant %q is outside the caller's tenants", c.ID)
		}
		if after.Plan != before.Plan {
			return outside("a tenant admin cannot change the plan of %q", c.ID)
		}
		if after.Parent != before.Parent && !(a.Covers(after.Parent) && a.Covers(before.Parent)) {
			return outside("a tenant admin cannot move %q out of its tenants", c.ID)
		}
	}
	return nil
}

// bindings are the parts of a user or agent a tenant admin may change.
type bindings struct {
	Roles  []gatehouse.Assignment `json:"roles"`
	Grants []gatehouse.Grant      `json:"grants"`
}

// allowsBindings lets a tenant admin add and remove role assignments and
// grants scoped to its tenants, and change nothing else of a user or agent.
func (a AdminScope) allowsBindings(c gatehouse.Change) error {
	if c.Op() != gatehouse.OpUpdate {
		return outside("a tenant admin cannot create or delete %s %q", c.Kind, c.ID)
	}
	var before, after bindings
	if err := decodeChange(c, &before, &after); err != nil {
		return err
	}
	// Everything but the bindings must stay as it is.
	var restBefore, restAfter map[string]json.RawMessage
	if err := json.Unmarshal(c.Before, &restBefore); err != nil {
		return fmt.Errorf("authorize change of %s %s: %w", c.Kind, c.ID, err)
	}
	if err := json.Unmarshal(c.After, &restAfter); err != nil {
		return fmt.Errorf("authorize change of %s %s: %w", c.Kind, c.ID, err)
	}
	for _, k := range []string{"roles", "grants"} {
		delete(restBefore, k)
		delete(restAfter, k)
	}
	if len(restBefore) != len(restAfter) {
		return outside("a tenant admin changes only the role assignments and grants of %s %q", c.Kind, c.ID)
	}
	for k, v := range restBefore {
		if w, ok := restAfter[k]; !ok || string(v) != string(w) {
			return outside("a tenant admin changes only the role assignments and grants of %s %q", c.Kind, c.ID)
		}
	}
	for _, r := range symmetricDiff(before.Roles, after.Roles) {
		if !a.Covers(r.Tenant) {
			return outside("role %q in tenant %q is outside the caller's tenants", r.Role, r.Tenant)
		}
	}
	for _, g := range symmetricDiff(before.Grants, after.Grants) {
		if !a.Covers(g.Tenant) {
			return outside("grant of %q in tenant %q is outside the caller's tenants", g.Permission, g.Tenant)
		}
	}
	return nil
}

// symmetricDiff returns the entries in exactly one of a and b.
func symmetricDiff[T comparable](a, b []T) []T {
	var out []T
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			out = append(out, x)
		}
	}
	return out
}

// decodeChange decodes c's before and after, where present.
func decodeChange(c gatehouse.Change, before, after any) error {
	for _, p := range []struct {
		raw json.RawMessage
		dst any
	}{{c.Before, before}, {c.After, after}} {
		if p.raw == nil {
			continue
		}
		if err := json.Unmarshal(p.raw, p.dst); err != nil {
			return fmt.Errorf("authorize change of %s %s: %w", c.Kind, c.ID, err)
		}
	}
	return nil
}
