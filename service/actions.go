package service

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/guard"
	"github.com/gatehouse/gatehouse/policy"
)

// Guard returns the agent action guard: authorize, simulate, confirm,
// cancel, report and list actions. Its decisions use the current snapshot
// and its records live in the store.
func (s *Service) Guard() *guard.Guard { return s.guard }

// ActionPolicies returns the effective policy of every action type in
// tenant, each part with where it comes from.
func (s *Service) ActionPolicies(tenant string) ([]gatehouse.EffectiveAction, error) {
	return s.Snapshot().ActionPolicies(tenant)
}

// ReplayActions replays the actions recorded within the last period
// against the stored policy with doc applied (as Apply would apply it),
// without changing anything, and reports what the change would deny.
func (s *Service) ReplayActions(ctx context.Context, doc *policy.Document, period time.Duration, examples int) (guard.ReplayReport, error) {
	if period <= 0 {
		return guard.ReplayReport{}, gatehouse.Invalidf("replay: the period %v must be positive", period)
	}
	current, version, err := s.load(ctx)
	if err != nil {
		return guard.ReplayReport{}, err
	}
	proposed := policy.Merge(current, doc)
	policy.Normalize(proposed)
	if problems := policy.Validate(proposed); len(problems) > 0 {
		return guard.ReplayReport{}, doc.Locate(problems)
	}
	snap, err := engine.Compile(proposed, version+1)
	if err != nil {
		return guard.ReplayReport{}, fmt.Errorf("replay: %w", err)
	}
	return s.guard.Replay(ctx, snap, s.guard.Now().Add(-period), examples)
}
