package service

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/policy"
)

// Apply syncs a policy document into the store: sections present in the
// document replace the stored ones exactly, absent sections stay as they are.
// Applying the same document twice changes nothing the second time. The
// policy it commits shares no memory with doc (see ApplyTaking).
func (s *Service) Apply(ctx context.Context, actor string, doc *policy.Document, dryRun bool) (Result, error) {
	return s.apply(ctx, actor, doc, dryRun, false)
}

// ApplyTaking is Apply for a caller that hands doc over, as the CLI and
// the HTTP API do with the document they parsed: the policy it commits,
// which the service keeps and later changes in place, holds the
// document's own lists rather than a copy of them, so that applying a
// million users holds them once. Once ApplyTaking has committed a change,
// doc holds no policy and applying it again is ErrInvalid; a dry run, an
// error or an unchanged policy leaves doc to the caller, normalized, and
// sorted by id if it got that far.
func (s *Service) ApplyTaking(ctx context.Context, actor string, doc *policy.Document, dryRun bool) (Result, error) {
	return s.apply(ctx, actor, doc, dryRun, true)
}

func (s *Service) apply(ctx context.Context, actor string, doc *policy.Document, dryRun, take bool) (Result, error) {
	if doc.Policy == nil {
		return Result{}, gatehouse.Invalidf("the document holds no policy: it was applied already; parse it again")
	}
	action := "policy.apply"
	if dryRun {
		actor, action = "", ""
	}
	var (
		res  Result
		kept []keptPlan // the billed plans an attempt set back in doc
	)
	attempt := 0
	err := s.write(ctx, action, func() (*engine.Snapshot, error) {
		pl, err := s.planApply(ctx, doc, take, attempt == 0, &kept)
		attempt++
		if err != nil {
			return nil, err
		}
		var snap *engine.Snapshot
		res, snap, err = s.commitPlanned(ctx, actor, action, dryRun, pl)
		return snap, err
	})
	if err != nil {
		return Result{}, err
	}
	if take && !dryRun && len(res.Changes) > 0 {
		doc.Policy = nil
	}
	return res, nil
}

// planApply is plan for a whole document: the new policy is the stored one
// merged with doc (policy.Merge, a copy that leaves both alone, or, when
// take is set, policy.MergeTaking: the document's sections themselves and
// copies of the stored ones), so the stored policy is not copied first, and
// it is validated once, as a whole, with the problems at the document's
// lines — on the first attempt: when take is set, an attempt after another
// writer's commit merges the document as the first one sorted it, whose
// paths no longer name the document's lines. The caller holds mu.
func (s *Service) planApply(ctx context.Context, doc *policy.Document, take, first bool, kept *[]keptPlan) (planned, error) {
	cur, err := s.base(ctx)
	if err != nil {
		return planned{}, err
	}
	before, base := cur.policy(), cur.v
	after := policy.Merge(before, doc)
	if take {
		// An earlier attempt set billed plans back in the document
		// itself; billing may have moved since.
		after = policy.MergeTaking(before, doc)
		restorePlans(after, kept)
	} else {
		kept = nil
	}
	if err := s.keepBilledPlans(ctx, before, after, kept); err != nil {
		return planned{}, err
	}
	// As plan does: a stored policy restored from a backup may predate a
	// normalization.
	policy.Normalize(after)
	if problems := policy.Validate(after); len(problems) > 0 {
		policy.ExplainReplaced(before, doc, problems)
		if take && !first {
			return planned{}, &policy.Error{Problems: problems}
		}
		return planned{}, doc.Locate(problems)
	}
	// A document handed over is the caller's no longer.
	if !take {
		if err := ownAttributes(after); err != nil {
			return planned{}, err
		}
	}
	sortByID(after)
	// The snapshot is compiled while the changes are computed: both only
	// read after, and on a large document each takes seconds.
	type compiled struct {
		snap *engine.Snapshot
		err  error
	}
	done := make(chan compiled, 1)
	go func() {
		snap, err := engine.Compile(after, base+1)
		done <- compiled{snap, err}
	}()
	changes, err := diffPolicies(before, after)
	if err == nil {
		// Who may make the change is decided before anything else is
		// said about it (see plan).
		err = s.authorizeChanges(ctx, cur, changes)
	}
	if err == nil && len(before.Superusers()) > 0 && len(after.Superusers()) == 0 {
		err = fmt.Errorf("%w: promote another user first", gatehouse.ErrLastSuperuser)
	}
	c := <-done
	if err != nil {
		return planned{}, err
	}
	if c.err != nil {
		return planned{}, c.err
	}
	return planned{base: base, after: after, changes: changes, snap: c.snap}, nil
}

// ownAttributes gives p its own copy of what policy.Merge shares with the
// document and the stored policy: attribute values and the subject types,
// so that the policy the service keeps shares no memory with the caller's
// document (see Update).
func ownAttributes(p *gatehouse.Policy) error {
	p.Settings.SubjectTypes = maps.Clone(p.Settings.SubjectTypes)
	for i := range p.Tenants {
		if err := ownMap(&p.Tenants[i].Attributes); err != nil {
			return err
		}
	}
	for i := range p.Users {
		if err := ownMap(&p.Users[i].Attributes); err != nil {
			return err
		}
	}
	for i := range p.Agents {
		if err := ownMap(&p.Agents[i].Attributes); err != nil {
			return err
		}
	}
	for i := range p.Resources {
		if err := ownMap(&p.Resources[i].Attributes); err != nil {
			return err
		}
	}
	return nil
}

// ownMap replaces *m, a free-form attribute map, with a deep copy made
// through its JSON encoding.
func ownMap(m *map[string]any) error {
	if *m == nil {
		return nil
	}
	b, err := json.Marshal(*m)
	if err != nil {
		return err
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		return err
	}
	*m = c
	return nil
}
