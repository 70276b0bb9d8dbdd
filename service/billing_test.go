package service_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/billing"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/sqlite"
)

const billingPolicy = `
settings: {default_tenants: [general]}
permissions:
  - {name: chat.view}
  - {name: fraud, feature: advanced_analytics}
  - {name: reports, feature: advanced_reporting}
roles: [{name: analyst, permissions: [chat.view, fraud, reports]}]
plans:
  - {name: free}
  - {name: starter, features: [basic_analytics]}
  - {name: pro, features: [advanced_analytics]}
  - {name: premium, features: [advanced_reporting]}
tenants:
  - {id: general}
  - {id: org, plan: free}
  - {id: store-a, parent: org}
  - {id: store-b, parent: org, plan: premium}
users:
  - {email: root@example.com, superuser: true}
  - {email: ann@example.com, tenants: [org, store-a, store-b], roles: [{role: analyst}]}
  - {email: bob@example.com, roles: [{role: analyst}]}
`

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

var bt0 = time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)

func billingConfig() *billing.Config {
	c := billing.DefaultConfig()
	c.Secrets = []string{"whsec_service_test_secret"}
	c.Prices = map[string]string{"price_pro": "pro", "price_premium": "premium"}
	c.Customers = map[string]billing.Target{
		"cus_org":   {Kind: gatehouse.KindTenant, ID: "org"},
		"cus_bob":   {Kind: gatehouse.KindUser, ID: "bob@example.com"},
		"cus_ghost": {Kind: gatehouse.KindTenant, ID: "ghost"},
	}
	return &c
}

// billingEnv is one or more services on one store, deciding from the
// billing policy at a fake time.
type billingEnv struct {
	t     *testing.T
	clock *fakeClock
	svcs  []*service.Service
	store gatehouse.Store
	cfg   *billing.Config
}

// storeOpeners open the stores every billing test runs on: a SQLite file
// and, when the test server is configured, a PostgreSQL schema. Each call
// of an opener's result opens another connection to the same store.
var storeOpeners = []struct {
	name string
	open func(t *testing.T) func() gatehouse.Store
}{
	{"sqlite", func(t *testing.T) func() gatehouse.Store {
		path := filepath.Join(t.TempDir(), "g.db")
		return func() gatehouse.Store {
			s, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}},
	{"postgres", func(t *testing.T) func() gatehouse.Store { return openPostgres(t) }},
}

// forEachStore runs test with n services on each store.
func forEachStore(t *testing.T, n int, test func(t *testing.T, env *billingEnv)) {
	for _, o := range storeOpeners {
		t.Run(o.name, func(t *testing.T) {
			open := o.open(t)
			env := &billingEnv{t: t, clock: &fakeClock{now: bt0}, cfg: billingConfig()}
			for i := range n {
				st := open()
				t.Cleanup(func() { st.Close() })
				if i == 0 {
					env.store = st
				}
				svc, err := service.Open(t.Context(), st, service.Config{Clock: env.clock})
				if err != nil {
					t.Fatal(err)
				}
				env.svcs = append(env.svcs, svc)
			}
			doc, err := policy.Parse("billing.yaml", []byte(billingPolicy))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := env.svcs[0].Apply(t.Context(), "test", doc, false); err != nil {
				t.Fatal(err)
			}
			for _, svc := range env.svcs[1:] {
				if _, err := svc.Reload(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			test(t, env)
		})
	}
}

func (env *billingEnv) apply(e billing.Event) service.BillingResult {
	env.t.Helper()
	res, err := env.svcs[0].ApplyBillingEvent(env.t.Context(), env.cfg, e)
	if err != nil {
		env.t.Fatalf("ApplyBillingEvent(%s %s) = %v", e.ID, e.Type, err)
	}
	return res
}

func (env *billingEnv) want(e billing.Event, outcome billing.Outcome) service.BillingResult {
	env.t.Helper()
	res := env.apply(e)
	if res.Outcome != outcome {
		env.t.Errorf("ApplyBillingEvent(%s %s) = %s, want %s", e.ID, e.Type, res.Outcome, outcome)
	}
	return res
}

// check decides permission for subject in tenant on the first service.
func (env *billingEnv) check(subject, permission, tenant string) gatehouse.Answer {
	return decide(env.t, env.svcs[0], &gatehouse.Request{Subject: gatehouse.User(subject), Permission: permission, Tenant: tenant})
}

func (env *billingEnv) wantDecision(subject, permission, tenant string, reason gatehouse.Reason, plan string) {
	env.t.Helper()
	d := env.check(subject, permission, tenant)
	if d.Reason != reason || d.Plan != plan {
		env.t.Errorf("Check(%s, %s, %q) = %s (plan %q), want %s (plan %q)", subject, permission, tenant, d.Reason, d.Plan, reason, plan)
	}
}

func checkout(id, customer string, at time.Duration, prices ...string) billing.Event {
	return billing.Event{ID: id, Type: billing.TypeCheckoutCompleted, Created: bt0.Add(at), Customer: customer,
		Prices: prices, Mode: "payment", PaymentStatus: "paid"}
}

func subscription(id, typ, customer string, at time.Duration, status string, prices ...string) billing.Event {
	return billing.Event{ID: id, Type: typ, Created: bt0.Add(at), Customer: customer, Status: status, Prices: prices}
}

// An organization's upgrade reaches its stores at once; its downgrade
// takes the feature away from the next decision.
func TestBillingUpgradeAndDowngrade(t *testing.T) {
	t.Parallel()
	forEachStore(t, 1, func(t *testing.T, env *billingEnv) {
		env.wantDecision("ann@example.com", "fraud", "store-a", gatehouse.ReasonPlanRequired, "pro")
		res := env.want(checkout("evt_1", "cus_org", 0, "price_pro"), billing.OutcomeApplied)
		if res.Subject != "tenant:org" || res.Plan != "pro" || len(res.Changes) != 1 || res.Version != 2 {
			t.Errorf("upgrade = %+v, want tenant:org on pro, one change, version 2", res)
		}
		// Inherited by store-a; store-b keeps its own premium plan.
		env.wantDecision("ann@example.com", "fraud", "store-a", gatehouse.ReasonGranted, "")
		env.wantDecision("ann@example.com", "fraud", "org", gatehouse.ReasonGranted, "")
		env.wantDecision("ann@example.com", "reports", "store-a", gatehouse.ReasonPlanRequired, "premium")
		env.wantDecision("ann@example.com", "reports", "store-b", gatehouse.ReasonGranted, "")
		// Superusers bypass plans either way.
		env.wantDecision("root@example.com", "reports", "store-a", gatehouse.ReasonSuperuser, "")

		env.want(subscription("evt_2", billing.TypeSubscriptionDeleted, "cus_org", time.Hour, "canceled"), billing.OutcomeApplied)
		env.wantDecision("ann@example.com", "fraud", "store-a", gatehouse.ReasonPlanRequired, "pro")

		events, err := env.svcs[0].ListAudit(t.Context(), gatehouse.AuditFilter{Actor: service.BillingActor})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range events {
			got = append(got, e.Action+" "+e.Target)
		}
		want := fmt.Sprint([]string{"billing.plan tenant/org", "billing.event billing/cus_org", "billing.plan tenant/org", "billing.event billing/cus_org"})
		if fmt.Sprint(got) != want {
			t.Errorf("billing audit events = %v, want %s", got, want)
		}
		if rep, err := env.svcs[0].VerifyAudit(t.Context()); err != nil {
			t.Errorf("VerifyAudit = %v, %v", rep, err)
		}
	})
}

// The same event delivered many times at once, to two instances, is
// applied once; every other delivery is a duplicate.
func TestBillingConcurrentDelivery(t *testing.T) {
	t.Parallel()
	forEachStore(t, 2, func(t *testing.T, env *billingEnv) {
		const n = 8
		e := checkout("evt_1", "cus_org", 0, "price_premium")
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			outcomes = map[billing.Outcome]int{}
		)
		for i := range n {
			wg.Go(func() {
				res, err := env.svcs[i%2].ApplyBillingEvent(t.Context(), env.cfg, e)
				if err != nil {
					t.Errorf("ApplyBillingEvent(concurrent) = %v", err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				outcomes[res.Outcome]++
			})
		}
		wg.Wait()
		if outcomes[billing.OutcomeApplied] != 1 || outcomes[billing.OutcomeDuplicate] != n-1 {
			t.Errorf("%d concurrent deliveries: %v, want 1 applied and %d duplicates", n, outcomes, n-1)
		}
		events, err := env.svcs[0].ListAudit(t.Context(), gatehouse.AuditFilter{Action: "billing.event"})
		if err != nil || len(events) != 1 {
			t.Errorf("billing.event audit events = %d (%v), want 1", len(events), err)
		}
		// A redelivery later is a duplicate too, and changes nothing.
		if _, err := env.svcs[0].Reload(t.Context()); err != nil {
			t.Fatal(err)
		}
		v := env.svcs[0].Snapshot().Version()
		env.want(e, billing.OutcomeDuplicate)
		if got := env.svcs[0].Snapshot().Version(); got != v {
			t.Errorf("a duplicate moved the policy from version %d to %d", v, got)
		}
		env.wantDecision("ann@example.com", "reports", "store-a", gatehouse.ReasonGranted, "")
	})
}

// Deliveries out of order never move a customer back.
func TestBillingOutOfOrder(t *testing.T) {
	t.Parallel()
	forEachStore(t, 1, func(t *testing.T, env *billingEnv) {
		env.want(subscription("evt_upd", billing.TypeSubscriptionUpdated, "cus_org", 2*time.Minute, "active", "price_premium"), billing.OutcomeApplied)
		env.want(subscription("evt_new", billing.TypeSubscriptionCreated, "cus_org", time.Minute, "active", "price_pro"), billing.OutcomeStale)
		env.wantDecision("ann@example.com", "reports", "store-a", gatehouse.ReasonGranted, "")
		env.want(subscription("evt_del", billing.TypeSubscriptionDeleted, "cus_org", 3*time.Minute, "canceled"), billing.OutcomeApplied)
		env.want(subscription("evt_upd2", billing.TypeSubscriptionUpdated, "cus_org", 2*time.Minute+30*time.Second, "active", "price_premium"), billing.OutcomeStale)
		env.wantDecision("ann@example.com", "fraud", "store-a", gatehouse.ReasonPlanRequired, "pro")
		// A stale event is not recorded: only applied ones are.
		if _, err := env.store.BillingEvent(t.Context(), "evt_new"); err == nil {
			t.Errorf("BillingEvent(stale) found, want it not stored")
		}
		cu, err := env.store.BillingCustomer(t.Context(), "cus_org")
		if err != nil || cu.LastEvent != "evt_del" || cu.Plan != "free" || cu.Status != gatehouse.BillingCanceled {
			t.Errorf("BillingCustomer(cus_org) = %+v, %v; want last event evt_del, free, canceled", cu, err)
		}
	})
}

// A failed payment keeps the plan through the grace period; the sweep then
// downgrades, once, however many instances sweep.
func TestBillingGracePeriod(t *testing.T) {
	t.Parallel()
	forEachStore(t, 2, func(t *testing.T, env *billingEnv) {
		env.want(checkout("evt_1", "cus_org", 0, "price_pro"), billing.OutcomeApplied)
		env.clock.set(bt0.Add(time.Hour))
		env.want(billing.Event{ID: "evt_2", Type: billing.TypePaymentFailed, Created: bt0.Add(time.Hour), Customer: "cus_org"}, billing.OutcomeApplied)
		env.wantDecision("ann@example.com", "fraud", "store-a", gatehouse.ReasonGranted, "")
		if res, err := env.svcs[0].SweepBilling(t.Context(), env.cfg); err != nil || len(res) != 0 {
			t.Errorf("SweepBilling(within grace) = %v, %v; want nothing to do", res, err)
		}
		env.clock.set(bt0.Add(time.Hour + env.cfg.GracePeriod))
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			outcomes = map[billing.Outcome]int{}
		)
		for _, svc := range env.svcs {
			wg.Go(func() {
				res, err := svc.SweepBilling(t.Context(), env.cfg)
				if err != nil {
					t.Errorf("SweepBilling = %v", err)
				}
				mu.Lock()
				defer mu.Unlock()
				for _, r := range res {
					outcomes[r.Outcome]++
				}
			})
		}
		wg.Wait()
		if outcomes[billing.OutcomeApplied] != 1 {
			t.Errorf("two concurrent sweeps: %v, want exactly one applied downgrade", outcomes)
		}
		if _, err := env.svcs[0].Reload(t.Context()); err != nil {
			t.Fatal(err)
		}
		env.wantDecision("ann@example.com", "fraud", "store-a", gatehouse.ReasonPlanRequired, "pro")
		if res, err := env.svcs[0].SweepBilling(t.Context(), env.cfg); err != nil || len(res) != 0 {
			t.Errorf("SweepBilling(after the downgrade) = %v, %v; want nothing to do", res, err)
		}
	})
}

// A user pays for their own plan (B2C); it applies where no tenant plan does.
func TestBillingUserPlan(t *testing.T) {
	t.Parallel()
	forEachStore(t, 1, func(t *testing.T, env *billingEnv) {
		env.wantDecision("bob@example.com", "reports", "", gatehouse.ReasonPlanRequired, "premium")
		env.want(checkout("evt_1", "cus_bob", 0, "price_premium"), billing.OutcomeApplied)
		env.wantDecision("bob@example.com", "reports", "", gatehouse.ReasonGranted, "")
		env.wantDecision("bob@example.com", "reports", "general", gatehouse.ReasonGranted, "")
		v, err := env.svcs[0].UserPlan(t.Context(), "Bob@Example.com")
		if err != nil || v.Plan != "premium" || len(v.Billing) != 1 || v.Billing[0].ID != "cus_bob" {
			t.Errorf("UserPlan(bob) = %+v, %v; want premium paid by cus_bob", v, err)
		}
	})
}

// Events that name no known customer, tenant or price change nothing.
func TestBillingNoChange(t *testing.T) {
	t.Parallel()
	forEachStore(t, 1, func(t *testing.T, env *billingEnv) {
		v := env.svcs[0].Snapshot().Version()
		env.want(checkout("evt_1", "cus_unknown", 0, "price_pro"), billing.OutcomeUnknownCustomer)
		env.want(checkout("evt_2", "cus_ghost", 0, "price_pro"), billing.OutcomeUnknownCustomer)
		env.want(checkout("evt_3", "cus_org", 0, "price_unknown"), billing.OutcomeUnknownPrice)
		env.want(billing.Event{ID: "evt_4", Type: "charge.refunded", Created: bt0, Customer: "cus_org"}, billing.OutcomeIgnored)
		env.want(billing.Event{ID: "evt_5", Type: billing.TypePaymentFailed, Created: bt0, Customer: "cus_org"}, billing.OutcomeIgnored)
		if got := env.svcs[0].Snapshot().Version(); got != v {
			t.Errorf("events without effect moved the policy from version %d to %d", v, got)
		}
		if cs, err := env.store.ListBillingCustomers(t.Context(), gatehouse.BillingCustomerFilter{}); err != nil || len(cs) != 0 {
			t.Errorf("ListBillingCustomers = %v, %v; want none stored", cs, err)
		}
	})
}

func TestSetPlans(t *testing.T) {
	t.Parallel()
	f := newFixture(t, service.Config{})
	f.apply(billingPolicy)
	ctx := t.Context()
	res, err := f.svc.SetTenantPlan(ctx, "cli:test", "org", "premium")
	if err != nil || len(res.Changes) != 1 {
		t.Fatalf("SetTenantPlan(org, premium) = %+v, %v", res, err)
	}
	check := func(tenant, permission string, want gatehouse.Reason) {
		t.Helper()
		d := decide(t, f.svc, &gatehouse.Request{Subject: gatehouse.User("ann@example.com"), Permission: permission, Tenant: tenant})
		if d.Reason != want {
			t.Errorf("Check(ann, %s, %s) = %s, want %s", permission, tenant, d.Reason, want)
		}
	}
	check("store-a", "reports", gatehouse.ReasonGranted)
	v, err := f.svc.TenantPlan(ctx, "store-a")
	if err != nil || v.Plan != "" || v.Effective != "premium" || v.From != "org" || len(v.Features) != 3 {
		t.Errorf("TenantPlan(store-a) = %+v, %v; want premium inherited from org with 3 features", v, err)
	}
	if _, err := f.svc.SetTenantPlan(ctx, "cli:test", "org", ""); err != nil {
		t.Fatal(err)
	}
	if v, err := f.svc.TenantPlan(ctx, "store-a"); err != nil || v.Effective != "free" || len(v.Features) != 0 {
		t.Errorf("TenantPlan(store-a, no plan above) = %+v, %v; want the lowest plan, free", v, err)
	}
	check("store-a", "fraud", gatehouse.ReasonPlanRequired)

	if _, err := f.svc.SetUserPlan(ctx, "cli:test", "New@Example.com", "pro"); err != nil {
		t.Errorf("SetUserPlan(new user) = %v", err)
	}
	if v, err := f.svc.UserPlan(ctx, "new@example.com"); err != nil || v.Plan != "pro" || v.Effective != "pro" {
		t.Errorf("UserPlan(new) = %+v, %v", v, err)
	}
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"unknown tenant", ignoreResult(f.svc.SetTenantPlan(ctx, "cli:test", "nowhere", "pro")), gatehouse.CodeNotFound},
		{"unknown plan", ignoreResult(f.svc.SetTenantPlan(ctx, "cli:test", "org", "platinum")), gatehouse.CodeInvalid},
		{"unknown user plan", ignoreResult(f.svc.SetUserPlan(ctx, "cli:test", "ann@example.com", "platinum")), gatehouse.CodeInvalid},
		{"bad email", ignoreResult(f.svc.SetUserPlan(ctx, "cli:test", "", "pro")), gatehouse.CodeInvalid},
		{"show unknown tenant", ignoreView(f.svc.TenantPlan(ctx, "nowhere")), gatehouse.CodeNotFound},
		{"show unknown user", ignoreView(f.svc.UserPlan(ctx, "nobody@example.com")), gatehouse.CodeNotFound},
	} {
		if got := gatehouse.ErrorCode(tt.err); got != tt.want {
			t.Errorf("%s: error %v has code %s, want %s", tt.name, tt.err, got, tt.want)
		}
	}
	events, err := f.svc.ListAudit(ctx, gatehouse.AuditFilter{Actor: "cli:test"})
	if err != nil || len(events) != 3 || events[0].Action != "tenant.set_plan" || events[2].Action != "user.set_plan" {
		t.Errorf("audit of plan changes = %d events, %v; want tenant.set_plan ×2, user.set_plan", len(events), err)
	}
}

func ignoreResult(_ service.Result, err error) error { return err }

func ignoreView(_ service.PlanView, err error) error { return err }

// Applying the document again after customers paid keeps the plans billing
// gave them; plans billing does not manage follow the document.
func TestApplyKeepsBilledPlans(t *testing.T) {
	t.Parallel()
	forEachStore(t, 1, func(t *testing.T, env *billingEnv) {
		env.want(checkout("evt_1", "cus_org", 0, "price_pro"), billing.OutcomeApplied)
		env.want(checkout("evt_2", "cus_bob", 0, "price_premium"), billing.OutcomeApplied)
		// The same document, written before they paid, and with another
		// plan for store-b, which no customer pays for.
		again := strings.Replace(billingPolicy, "{id: store-b, parent: org, plan: premium}", "{id: store-b, parent: org, plan: starter}", 1)
		doc, err := policy.Parse("billing.yaml", []byte(again))
		if err != nil {
			t.Fatal(err)
		}
		for _, dryRun := range []bool{true, false} {
			res, err := env.svcs[0].Apply(t.Context(), "test", doc, dryRun)
			if err != nil {
				t.Fatal(err)
			}
			var changed []string
			for _, c := range res.Changes {
				changed = append(changed, string(c.Kind)+"/"+c.ID)
			}
			if !slices.Equal(changed, []string{"tenant/store-b"}) {
				t.Errorf("Apply(dry run %t) changed %v, want only tenant/store-b", dryRun, changed)
			}
		}
		// Replacing the tenant or the user object keeps the plan too.
		for _, put := range []struct {
			kind     gatehouse.Kind
			id, body string
		}{
			{gatehouse.KindTenant, "org", `{"id": "org", "name": "Org"}`},
			{gatehouse.KindUser, "bob@example.com", `{"email": "bob@example.com", "roles": [{"role": "analyst"}]}`},
		} {
			res, _, err := env.svcs[0].PutObject(t.Context(), "test", put.kind, put.id, []byte(put.body))
			if err != nil {
				t.Fatalf("PutObject(%s %s) = %v", put.kind, put.id, err)
			}
			for _, c := range res.Changes {
				if strings.Contains(string(c.Before), `"plan"`) != strings.Contains(string(c.After), `"plan"`) {
					t.Errorf("PutObject(%s %s) changed the plan: %s → %s", put.kind, put.id, c.Before, c.After)
				}
			}
		}
		env.wantDecision("ann@example.com", "fraud", "store-a", gatehouse.ReasonGranted, "")
		env.wantDecision("bob@example.com", "reports", "", gatehouse.ReasonGranted, "")
		env.wantDecision("ann@example.com", "reports", "store-b", gatehouse.ReasonPlanRequired, "premium")
	})
}
