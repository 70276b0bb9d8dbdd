package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/billing"
	gatehttp "github.com/gatehouse/gatehouse/http"
	"github.com/gatehouse/gatehouse/service"
)

// planFlags are the flags of plan set and plan show.
func planFlags(withNone bool) func(fs *flag.FlagSet, o *options) {
	return func(fs *flag.FlagSet, o *options) {
		fs.StringVar(&o.tenant, "tenant", "", "the tenant (its plan covers its subtree)")
		fs.StringVar(&o.user, "user", "", "the user's email (their own plan)")
		if withNone {
			fs.BoolVar(&o.none, "none", false, "remove the own plan: a tenant inherits its parent's, a user falls back to the lowest plan")
		}
		fs.BoolVar(&o.jsonOut, "json", false, "print as JSON")
	}
}

// planTarget checks that exactly one of --tenant and --user is given.
func planTarget(m *Main) error {
	if (m.opts.tenant == "") == (m.opts.user == "") {
		return usage("one_of", "Flags", "--tenant ID, --user EMAIL")
	}
	return nil
}

// runPlanSet sets a tenant's or user's own plan: one audited change.
func runPlanSet(ctx context.Context, m *Main) error {
	if err := planTarget(m); err != nil {
		return err
	}
	if (len(m.args) == 1) == m.opts.none {
		return usage("plan_missing")
	}
	plan := ""
	if len(m.args) == 1 {
		plan = m.args[0]
	}
	if m.opts.tenant != "" {
		return m.printResult(m.svc.SetTenantPlan(ctx, m.Config.Actor, m.opts.tenant, plan))
	}
	return m.printResult(m.svc.SetUserPlan(ctx, m.Config.Actor, m.opts.user, plan))
}

// runPlanShow prints a tenant's or user's own and effective plan, its
// features and the billing customers that pay for it.
func runPlanShow(ctx context.Context, m *Main) error {
	if err := planTarget(m); err != nil {
		return err
	}
	var (
		v   service.PlanView
		err error
	)
	if m.opts.tenant != "" {
		v, err = m.svc.TenantPlan(ctx, m.opts.tenant)
	} else {
		v, err = m.svc.UserPlan(ctx, m.opts.user)
	}
	if err != nil {
		return err
	}
	if m.opts.jsonOut {
		return writeJSON(m, v)
	}
	own := v.Plan
	if own == "" {
		own = "(none)"
	}
	effective := v.Effective
	switch {
	case v.From != "":
		effective += " (inherited from " + v.From + ")"
	case v.Plan == "" && v.Effective != "":
		effective += " (the lowest plan)"
	}
	fmt.Fprintf(m.Stdout, "target      %s\nplan        %s\neffective   %s\nfeatures    %s\n",
		v.Target, own, effective, strings.Join(v.Features, ", "))
	for _, cu := range v.Billing {
		line := fmt.Sprintf("billing     %s: %s, %s", cu.ID, cu.Plan, cu.Status)
		if !cu.GraceUntil.IsZero() {
			line += ", grace until " + cu.GraceUntil.Format(time.RFC3339)
		}
		fmt.Fprintf(m.Stdout, "%s (last event %s of %s)\n", line, cu.LastEvent, cu.LastCreated.Format(time.RFC3339))
	}
	return nil
}

// billingFlags are serve's billing flags.
func billingFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.billingConfig, "billing-config", "", "enable the billing webhook with this price and customer mapping (YAML or JSON, see docs/billing.md)")
	fs.Func("billing-secret", "a webhook signing secret; repeat to rotate (env GATEHOUSE_BILLING_SECRETS, comma-separated)", func(v string) error {
		o.billingSecrets = append(o.billingSecrets, v)
		return nil
	})
	fs.DurationVar(&o.billingSweep, "billing-sweep-interval", time.Minute, "how often to downgrade customers whose grace period after a failed payment ended")
}

// loadBilling sets cfg.Billing from --billing-config and the secrets; without
// --billing-config billing stays off.
func (m *Main) loadBilling(ctx context.Context, cfg *gatehttp.Config) error {
	o := m.opts
	secrets := o.billingSecrets
	if len(secrets) == 0 {
		for s := range strings.SplitSeq(os.Getenv("GATEHOUSE_BILLING_SECRETS"), ",") {
			if s = strings.TrimSpace(s); s != "" {
				secrets = append(secrets, s)
			}
		}
	}
	switch {
	case o.billingConfig == "" && len(o.billingSecrets) > 0:
		return usage("needs", "Flag", "--billing-secret", "Other", "--billing-config")
	case o.billingConfig == "":
		return nil
	case o.billingSweep <= 0:
		return usage("positive", "Flag", "--billing-sweep-interval")
	}
	bc, err := billing.LoadConfig(o.billingConfig)
	if err != nil {
		return usage("bad_value", "Flag", "--billing-config", "Detail", err)
	}
	bc.Secrets = secrets
	if err := bc.Validate(); err != nil {
		return usage("billing_secrets", "Detail", err)
	}
	p, _, err := m.svc.Policy(ctx)
	if err != nil {
		return err
	}
	if unknown := bc.UnknownPlans(p); len(unknown) > 0 {
		cfg.Logger.Warn("the billing configuration names plans the policy does not declare; their events change nothing",
			"plans", strings.Join(unknown, ", "))
	}
	cfg.Billing = &bc
	return nil
}

// sweepBilling downgrades customers whose grace period ended, now and every
// --billing-sweep-interval until ctx ends, if billing is on. The returned
// function waits for the sweeper to stop.
func (m *Main) sweepBilling(ctx context.Context, cfg gatehttp.Config) (wait func()) {
	if cfg.Billing == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := m.svc.FollowBilling(ctx, cfg.Billing, m.opts.billingSweep,
			func(r service.BillingResult) {
				cfg.Logger.Info("billing grace period ended", "customer", r.Customer, "outcome", r.Outcome,
					"subject", r.Subject, "plan", r.Plan)
			},
			func(err error) { cfg.Logger.Warn("billing sweep failed; retrying at the next interval", "err", err) })
		cfg.Logger.Debug("billing sweeper stopped", "reason", err)
	}()
	return func() { <-done }
}
