package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse"
)

var billingTests = []test{
	{"CommitAndRead", testBillingCommitAndRead},
	{"DuplicateEvent", testBillingDuplicate},
	{"CustomerVersion", testBillingCustomerVersion},
	{"StaleBase", testBillingStaleBase},
	{"Invalid", testBillingInvalid},
	{"ListFilters", testBillingList},
	{"ConcurrentDelivery", testBillingConcurrent},
}

// b0 is when the billing tests happen; stores keep microseconds.
var b0 = time.Date(2026, 5, 6, 7, 8, 9, 123456000, time.UTC)

// tenantPlan returns the create or update of tenant id with plan.
func tenantPlan(t *testing.T, id, before, after string) gatehouse.Change {
	t.Helper()
	body := func(plan string) json.RawMessage {
		if plan == "" {
			return nil
		}
		b, err := json.Marshal(gatehouse.Tenant{ID: id, Plan: plan})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return gatehouse.Change{Kind: gatehouse.KindTenant, ID: id, Before: body(before), After: body(after)}
}

// billingCommit is a valid commit of event id for customer cus at
// customer version v, moving tenant acme from plan "from" to "to".
func billingCommit(t *testing.T, id, cus string, v, base int64, from, to string) gatehouse.BillingCommit {
	t.Helper()
	c := gatehouse.BillingCommit{
		Base:   base,
		Events: []gatehouse.AuditEvent{event("billing", "billing.event", "billing/"+id)},
		Event: gatehouse.BillingEvent{ID: id, Type: "customer.subscription.updated", Customer: cus,
			Created: b0, ProcessedAt: b0.Add(time.Second), Outcome: "applied"},
		Customer: gatehouse.BillingCustomer{ID: cus, Subject: "tenant:acme", Plan: to, Status: gatehouse.BillingActive,
			LastEvent: id, LastCreated: b0, UpdatedAt: b0.Add(time.Second), Version: v},
	}
	if from != to {
		c.Changes = []gatehouse.Change{tenantPlan(t, "acme", from, to)}
	}
	return c
}

func commitBilling(t *testing.T, s gatehouse.Store, c gatehouse.BillingCommit) int64 {
	t.Helper()
	v, err := s.CommitBilling(t.Context(), c)
	if err != nil {
		t.Fatalf("CommitBilling(%s) = %v", c.Event.ID, err)
	}
	return v
}

func customer(t *testing.T, s gatehouse.Store, id string) gatehouse.BillingCustomer {
	t.Helper()
	cu, err := s.BillingCustomer(t.Context(), id)
	if err != nil {
		t.Fatalf("BillingCustomer(%s) = %v", id, err)
	}
	return cu
}

func testBillingCommitAndRead(t *testing.T, s gatehouse.Store) {
	ctx := t.Context()
	if _, err := s.BillingCustomer(ctx, "cus_1"); !errors.Is(err, gatehouse.ErrNotFound) {
		t.Errorf("BillingCustomer(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.BillingEvent(ctx, "evt_1"); !errors.Is(err, gatehouse.ErrNotFound) {
		t.Errorf("BillingEvent(unknown) = %v, want ErrNotFound", err)
	}
	c := billingCommit(t, "evt_1", "cus_1", 0, 0, "", "pro")
	c.Customer.Status, c.Customer.GraceUntil = gatehouse.BillingPastDue, b0.Add(72*time.Hour)
	if v := commitBilling(t, s, c); v != 1 {
		t.Errorf("CommitBilling(with a change) = version %d, want 1", v)
	}
	if c.Events[0].Seq != 1 || c.Events[0].Hash == "" {
		t.Errorf("CommitBilling left event %+v, want seq 1 and a hash", c.Events[0])
	}
	want := c.Customer
	want.Version = 1
	if diff := cmp.Diff(want, customer(t, s, "cus_1")); diff != "" {
		t.Errorf("BillingCustomer (-want +got):\n%s", diff)
	}
	got, err := s.BillingEvent(ctx, "evt_1")
	if err != nil {
		t.Fatalf("BillingEvent = %v", err)
	}
	if diff := cmp.Diff(c.Event, got); diff != "" {
		t.Errorf("BillingEvent (-want +got):\n%s", diff)
	}
	objs, version, err := s.LoadPolicy(ctx)
	if err != nil || version != 1 || len(objs) != 1 || objs[0].ID != "acme" {
		t.Errorf("LoadPolicy() = %v, %d, %v; want tenant acme at version 1", objs, version, err)
	}

	// An event that changes no plan still records the event and the
	// customer, at the same policy version.
	c2 := billingCommit(t, "evt_2", "cus_1", 1, 1, "pro", "pro")
	c2.Event.Created, c2.Customer.LastCreated = b0.Add(time.Hour), b0.Add(time.Hour)
	if v := commitBilling(t, s, c2); v != 1 {
		t.Errorf("CommitBilling(no change) = version %d, want 1", v)
	}
	if cu := customer(t, s, "cus_1"); cu.Version != 2 || cu.LastEvent != "evt_2" || !cu.GraceUntil.IsZero() {
		t.Errorf("BillingCustomer after evt_2 = %+v, want version 2, last event evt_2, no grace", cu)
	}
	verify(t, s, 2)
}

func testBillingDuplicate(t *testing.T, s gatehouse.Store) {
	commitBilling(t, s, billingCommit(t, "evt_1", "cus_1", 0, 0, "", "pro"))
	before := snapshot(t, s)
	cu := customer(t, s, "cus_1")
	// The redelivery read the customer before the first commit: it is
	// refused as a duplicate, not as a conflict.
	_, err := s.CommitBilling(t.Context(), billingCommit(t, "evt_1", "cus_1", 0, 0, "", "pro"))
	wantErr(t, "CommitBilling(same id, old read)", err, gatehouse.ErrDuplicateEvent)
	_, err = s.CommitBilling(t.Context(), billingCommit(t, "evt_1", "cus_1", 1, 1, "pro", "enterprise"))
	wantErr(t, "CommitBilling(same id, fresh read)", err, gatehouse.ErrDuplicateEvent)
	unchanged(t, s, before, "a duplicate event")
	if diff := cmp.Diff(cu, customer(t, s, "cus_1")); diff != "" {
		t.Errorf("a duplicate event changed the customer (-before +after):\n%s", diff)
	}
}

func testBillingCustomerVersion(t *testing.T, s gatehouse.Store) {
	commitBilling(t, s, billingCommit(t, "evt_1", "cus_1", 0, 0, "", "pro"))
	before := snapshot(t, s)
	for _, v := range []int64{0, 2} {
		_, err := s.CommitBilling(t.Context(), billingCommit(t, "evt_2", "cus_1", v, 1, "pro", "enterprise"))
		wantErr(t, fmt.Sprintf("CommitBilling(customer version %d, stored 1)", v), err, gatehouse.ErrConflict)
	}
	unchanged(t, s, before, "a stale customer version")
	if _, err := s.BillingEvent(t.Context(), "evt_2"); !errors.Is(err, gatehouse.ErrNotFound) {
		t.Errorf("BillingEvent(refused) = %v, want ErrNotFound: a refused commit records nothing", err)
	}
}

func testBillingStaleBase(t *testing.T, s gatehouse.Store) {
	commitBilling(t, s, billingCommit(t, "evt_1", "cus_1", 0, 0, "", "pro"))
	before := snapshot(t, s)
	cu := customer(t, s, "cus_1")
	_, err := s.CommitBilling(t.Context(), billingCommit(t, "evt_2", "cus_1", 1, 0, "pro", "enterprise"))
	wantErr(t, "CommitBilling(base 0, stored 1)", err, gatehouse.ErrConflict)
	// Even an event that changes nothing must have read the current policy.
	_, err = s.CommitBilling(t.Context(), billingCommit(t, "evt_3", "cus_1", 1, 0, "pro", "pro"))
	wantErr(t, "CommitBilling(no change, base 0, stored 1)", err, gatehouse.ErrConflict)
	unchanged(t, s, before, "a stale policy base")
	if diff := cmp.Diff(cu, customer(t, s, "cus_1")); diff != "" {
		t.Errorf("a stale base changed the customer (-before +after):\n%s", diff)
	}
	if _, err := s.BillingEvent(t.Context(), "evt_2"); !errors.Is(err, gatehouse.ErrNotFound) {
		t.Errorf("BillingEvent(refused) = %v, want ErrNotFound", err)
	}
}

func testBillingInvalid(t *testing.T, s gatehouse.Store) {
	before := snapshot(t, s)
	tests := []struct {
		name string
		edit func(c *gatehouse.BillingCommit)
	}{
		{"no event id", func(c *gatehouse.BillingCommit) { c.Event.ID = "" }},
		{"no created time", func(c *gatehouse.BillingCommit) { c.Event.Created = time.Time{} }},
		{"no subject", func(c *gatehouse.BillingCommit) { c.Customer.Subject = "" }},
		{"another customer", func(c *gatehouse.BillingCommit) { c.Customer.ID = "cus_2" }},
		{"unknown status", func(c *gatehouse.BillingCommit) { c.Customer.Status = "paused" }},
		{"negative version", func(c *gatehouse.BillingCommit) { c.Customer.Version = -1 }},
		{"NUL in id", func(c *gatehouse.BillingCommit) { c.Event.ID = "evt\x00" }},
		{"invalid change", func(c *gatehouse.BillingCommit) { c.Changes[0].After = json.RawMessage("{") }},
		{"event without actor", func(c *gatehouse.BillingCommit) { c.Events[0].Actor = "" }},
		{"before mismatch", func(c *gatehouse.BillingCommit) { c.Changes[0] = tenantPlan(t, "acme", "free", "pro") }},
	}
	for _, tt := range tests {
		c := billingCommit(t, "evt_1", "cus_1", 0, 0, "", "pro")
		tt.edit(&c)
		_, err := s.CommitBilling(t.Context(), c)
		wantErr(t, "CommitBilling("+tt.name+")", err, gatehouse.ErrInvalid)
	}
	unchanged(t, s, before, "an invalid billing commit")
	if _, err := s.BillingCustomer(t.Context(), "cus_1"); !errors.Is(err, gatehouse.ErrNotFound) {
		t.Errorf("BillingCustomer after invalid commits = %v, want ErrNotFound", err)
	}
}

func testBillingList(t *testing.T, s gatehouse.Store) {
	base := int64(0)
	for i, st := range []struct {
		id, subject string
		status      gatehouse.BillingStatus
		grace       time.Duration
	}{
		{"cus_a", "tenant:acme", gatehouse.BillingPastDue, time.Hour},
		{"cus_b", "tenant:acme", gatehouse.BillingPastDue, 3 * time.Hour},
		{"cus_c", "user:ana@example.com", gatehouse.BillingActive, 0},
		{"cus_d", "user:ana@example.com", gatehouse.BillingCanceled, 0},
	} {
		c := billingCommit(t, fmt.Sprintf("evt_%d", i), st.id, 0, base, "", "")
		c.Customer.Plan, c.Customer.Subject, c.Customer.Status = "pro", st.subject, st.status
		if st.grace > 0 {
			c.Customer.GraceUntil = b0.Add(st.grace)
		}
		base = commitBilling(t, s, c)
	}
	ids := func(f gatehouse.BillingCustomerFilter) []string {
		t.Helper()
		out, err := s.ListBillingCustomers(t.Context(), f)
		if err != nil {
			t.Fatalf("ListBillingCustomers(%+v) = %v", f, err)
		}
		var ids []string
		for _, cu := range out {
			ids = append(ids, cu.ID)
		}
		return ids
	}
	tests := []struct {
		f    gatehouse.BillingCustomerFilter
		want []string
	}{
		{gatehouse.BillingCustomerFilter{}, []string{"cus_a", "cus_b", "cus_c", "cus_d"}},
		{gatehouse.BillingCustomerFilter{Limit: 2}, []string{"cus_a", "cus_b"}},
		{gatehouse.BillingCustomerFilter{Subject: "user:ana@example.com"}, []string{"cus_c", "cus_d"}},
		{gatehouse.BillingCustomerFilter{GraceEndedBy: b0}, nil},
		{gatehouse.BillingCustomerFilter{GraceEndedBy: b0.Add(time.Hour)}, []string{"cus_a"}},
		{gatehouse.BillingCustomerFilter{GraceEndedBy: b0.Add(5 * time.Hour)}, []string{"cus_a", "cus_b"}},
		{gatehouse.BillingCustomerFilter{GraceEndedBy: b0.Add(5 * time.Hour), Subject: "user:ana@example.com"}, nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, ids(tt.f)); diff != "" {
			t.Errorf("ListBillingCustomers(%+v) (-want +got):\n%s", tt.f, diff)
		}
	}
	_, err := s.ListBillingCustomers(t.Context(), gatehouse.BillingCustomerFilter{Limit: -1})
	wantErr(t, "ListBillingCustomers(limit -1)", err, gatehouse.ErrInvalid)
}

// testBillingConcurrent delivers one event many times at once, each
// delivery having read the same state: exactly one commits.
func testBillingConcurrent(t *testing.T, s gatehouse.Store) {
	const n = 8
	var (
		wg                   sync.WaitGroup
		mu                   sync.Mutex
		ok, dup, conflicting int
	)
	for range n {
		wg.Go(func() {
			_, err := s.CommitBilling(t.Context(), billingCommit(t, "evt_1", "cus_1", 0, 0, "", "pro"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, gatehouse.ErrDuplicateEvent):
				dup++
			case errors.Is(err, gatehouse.ErrConflict):
				conflicting++
			default:
				t.Errorf("CommitBilling(concurrent) = %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 1 || dup+conflicting != n-1 {
		t.Errorf("%d concurrent deliveries: %d committed, %d duplicates, %d conflicts; want exactly 1 committed",
			n, ok, dup, conflicting)
	}
	if cu := customer(t, s, "cus_1"); cu.Version != 1 {
		t.Errorf("customer version = %d after concurrent deliveries, want 1", cu.Version)
	}
	verify(t, s, 1)
}
