package http_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse"
)

// Seed 004's /api/v1/permissions routes over the example policy: acme sets
// cancel_order, process_refund (with limits) and apply_discount (a
// percentage limit); acme-berlin has refund limits of its own; acme-milan
// sets cancel_order's confirmation only.

type permRow struct {
	ID                       string `json:"id"`
	StoreID                  string `json:"store_id"`
	Tenant                   string `json:"tenant"`
	ActionType               string `json:"action_type"`
	Label                    string `json:"label"`
	Description              string `json:"description"`
	Enabled                  bool   `json:"enabled"`
	RequiresConfirmation     bool   `json:"requires_confirmation"`
	EnabledFrom              string `json:"enabled_from"`
	RequiresConfirmationFrom string `json:"requires_confirmation_from"`
	ApproverPermission       string `json:"approver_permission"`
	PolicyVersion            int64  `json:"policy_version"`
}

type limRow struct {
	ID              string `json:"id"`
	StoreID         string `json:"store_id"`
	Tenant          string `json:"tenant"`
	ActionType      string `json:"action_type"`
	LimitType       string `json:"limit_type"`
	LimitValue      string `json:"limit_value"`
	Currency        string `json:"currency"`
	Window          string `json:"window"`
	TimeWindowHours int64  `json:"time_window_hours"`
	Source          string `json:"source"`
	PolicyVersion   int64  `json:"policy_version"`
}

// ignoreIDs compares rows without their ids and policy versions, which
// tests check on their own.
var ignoreIDs = cmpopts.IgnoreFields(limRow{}, "ID", "PolicyVersion")

// permFixture is the example policy served, with the tokens of its
// superuser and of olga, AI Administrator in acme and its stores.
type permFixture struct {
	*fixture
	admin, olga string
}

func newPermFixture(t *testing.T) *permFixture {
	f := newFixture(t, examplePolicy, nil)
	return &permFixture{fixture: f, admin: f.token("user:admin@example.com"), olga: f.token("user:olga@acme.example")}
}

// as sends c with token, and X-Tenant-ID tenant unless it is "".
func (f *permFixture) as(token, tenant string, c call) response {
	f.t.Helper()
	c.token = token
	if tenant != "" {
		c.header = map[string]string{"X-Tenant-ID": tenant}
	}
	return f.do(c)
}

func (f *permFixture) permissions(tenant string) map[string]permRow {
	f.t.Helper()
	r := f.as(f.admin, tenant, call{method: http.MethodGet, path: "/api/v1/permissions"})
	if r.status != http.StatusOK {
		f.t.Fatalf("GET /api/v1/permissions in %s: %d %s", tenant, r.status, r.body)
	}
	rows := map[string]permRow{}
	for _, row := range decodeInto[[]permRow](f.t, r) {
		rows[row.ActionType] = row
	}
	return rows
}

func (f *permFixture) limits(tenant string) []limRow {
	f.t.Helper()
	r := f.as(f.admin, tenant, call{method: http.MethodGet, path: "/api/v1/permissions/limits"})
	if r.status != http.StatusOK {
		f.t.Fatalf("GET /api/v1/permissions/limits in %s: %d %s", tenant, r.status, r.body)
	}
	return decodeInto[[]limRow](f.t, r)
}

// version is the stored policy version.
func (f *permFixture) version() int64 {
	f.t.Helper()
	v, err := f.store.PolicyVersion(f.t.Context())
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

// wantError fails unless r is an error with status, code and field.
func wantError(t *testing.T, name string, r response, status int, code, field string) {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(r.body, &e); err != nil || r.status != status || e.Error.Code != code || e.Error.Field != field {
		t.Errorf("%s: %d %s, want %d %s naming field %q", name, r.status, r.body, status, code, field)
	}
}

func TestPermissionsList(t *testing.T) {
	t.Parallel()
	f := newPermFixture(t)
	// A new tenant without a parent has the action types' defaults: seed
	// 004's conservative seven.
	if r := f.do(call{method: http.MethodPut, path: "/api/v1/tenants/newshop", token: f.admin, body: `{"name": "New shop"}`}); r.status != http.StatusCreated {
		t.Fatalf("create tenant newshop: %d %s", r.status, r.body)
	}
	tests := []struct {
		tenant, action        string
		enabled, confirm      bool
		enabledFrom, confFrom string
	}{
		{"newshop", "lookup_order", true, false, "default", "default"},
		{"newshop", "send_tracking", true, false, "default", "default"},
		{"newshop", "update_address", false, true, "default", "default"},
		{"newshop", "cancel_order", false, true, "default", "default"},
		{"newshop", "initiate_return", false, true, "default", "default"},
		{"newshop", "process_refund", false, true, "default", "default"},
		{"newshop", "apply_discount", false, true, "default", "default"},
		// The organization's own setting.
		{"acme", "cancel_order", true, true, "tenant:acme", "default"},
		// A store overriding one part, inheriting the other.
		{"acme-milan", "cancel_order", true, false, "tenant:acme", "tenant:acme-milan"},
		// A store without a setting of its own.
		{"acme-berlin", "cancel_order", true, true, "tenant:acme", "default"},
		{"acme-berlin", "lookup_order", true, false, "default", "default"},
	}
	rows := map[string]map[string]permRow{}
	version := f.version()
	for _, tc := range tests {
		if rows[tc.tenant] == nil {
			rows[tc.tenant] = f.permissions(tc.tenant)
			if len(rows[tc.tenant]) != 7 {
				t.Errorf("permissions in %s: %d rows, want 7", tc.tenant, len(rows[tc.tenant]))
			}
		}
		got := rows[tc.tenant][tc.action]
		if got.Enabled != tc.enabled || got.EnabledFrom != tc.enabledFrom || got.RequiresConfirmation != tc.confirm ||
			got.RequiresConfirmationFrom != tc.confFrom {
			t.Errorf("%s in %s = enabled %v from %s, confirmation %v from %s; want %v from %s, %v from %s", tc.action, tc.tenant,
				got.Enabled, got.EnabledFrom, got.RequiresConfirmation, got.RequiresConfirmationFrom,
				tc.enabled, tc.enabledFrom, tc.confirm, tc.confFrom)
		}
		wantID := uuid.NewSHA1(uuid.MustParse("6288ee9e-6558-42a3-ad27-d98c2a4bedbf"), []byte(tc.tenant+"\x00"+tc.action)).String()
		if got.ID != wantID || got.StoreID != tc.tenant || got.Tenant != tc.tenant || got.PolicyVersion != version {
			t.Errorf("%s in %s: id %s, store_id %s, tenant %s, version %d; want %s, %s, %s, %d", tc.action, tc.tenant,
				got.ID, got.StoreID, got.Tenant, got.PolicyVersion, wantID, tc.tenant, tc.tenant, version)
		}
	}
	if r := rows["acme"]["process_refund"]; r.ApproverPermission != "manage_ai_tools" || r.Label != "Process refunds" ||
		r.Description != "Refund money to the customer's payment method." {
		t.Errorf("process_refund in acme = %+v", r)
	}
	if r := rows["acme"]["lookup_order"]; r.ApproverPermission != "" {
		t.Errorf("lookup_order has approver %q, want none", r.ApproverPermission)
	}
	// Labels and descriptions in the caller's language, English otherwise.
	for lang, want := range map[string][2]string{
		"de":    {"Erstattungen durchführen", "Erstattet Geld auf das Zahlungsmittel des Kunden."},
		"zh":    {"处理退款", "将款项退回客户的支付方式。"},
		"pt-BR": {"Process refunds", "Refund money to the customer's payment method."},
	} {
		r := f.do(call{method: http.MethodGet, path: "/api/v1/permissions", token: f.olga,
			header: map[string]string{"X-Tenant-ID": "acme", "Accept-Language": lang}})
		for _, row := range decodeInto[[]permRow](t, r) {
			if row.ActionType == "process_refund" && (row.Label != want[0] || row.Description != want[1]) {
				t.Errorf("process_refund in %s: %q, %q; want %q, %q", lang, row.Label, row.Description, want[0], want[1])
			}
		}
	}
}

func TestPermissionsUpdate(t *testing.T) {
	t.Parallel()
	f := newPermFixture(t)
	put := func(action, body string) response {
		return f.as(f.olga, "acme-berlin", call{method: http.MethodPut, path: "/api/v1/permissions/" + action, body: body})
	}
	audited := func() []gatehouse.AuditEvent {
		t.Helper()
		r := f.do(call{method: http.MethodGet, path: "/api/v1/audit?action=action.policy", token: f.admin})
		var page struct {
			Events []gatehouse.AuditEvent `json:"events"`
		}
		if err := json.Unmarshal(r.body, &page); err != nil || r.status != http.StatusOK {
			t.Fatalf("audit: %d %s", r.status, r.body)
		}
		return page.Events
	}

	steps := []struct {
		name, body            string
		enabled, confirm      bool
		enabledFrom, confFrom string
		changes               bool
	}{
		{"empty, with nothing of its own", `{}`, false, true, "default", "default", false},
		{"enable only", `{"enabled": true}`, true, true, "tenant:acme-berlin", "default", true},
		{"confirmation only", `{"requires_confirmation": false}`, true, false, "tenant:acme-berlin", "tenant:acme-berlin", true},
		{"nulls change nothing", `{"enabled": null}`, true, false, "tenant:acme-berlin", "tenant:acme-berlin", false},
		{"empty changes nothing", `{}`, true, false, "tenant:acme-berlin", "tenant:acme-berlin", false},
		{"the same again changes nothing", `{"enabled": true}`, true, false, "tenant:acme-berlin", "tenant:acme-berlin", false},
	}
	for _, s := range steps {
		before := f.version()
		r := put("update_address", s.body)
		if r.status != http.StatusOK {
			t.Fatalf("%s: PUT %s: %d %s", s.name, s.body, r.status, r.body)
		}
		got := decodeInto[permRow](t, r)
		if got.ActionType != "update_address" || got.Tenant != "acme-berlin" || got.Enabled != s.enabled || got.EnabledFrom != s.enabledFrom ||
			got.RequiresConfirmation != s.confirm || got.RequiresConfirmationFrom != s.confFrom {
			t.Errorf("%s: PUT %s = %+v", s.name, s.body, got)
		}
		if moved := f.version() != before; moved != s.changes || got.PolicyVersion != f.version() {
			t.Errorf("%s: version %d → %d, row at %d; want a change: %v", s.name, before, f.version(), got.PolicyVersion, s.changes)
		}
		if list := f.permissions("acme-berlin")["update_address"]; list != got {
			t.Errorf("%s: the list has %+v, the PUT answered %+v", s.name, list, got)
		}
	}
	// Other tenants and actions are untouched.
	if got := f.permissions("acme-milan")["update_address"]; got.Enabled || got.EnabledFrom != "default" {
		t.Errorf("update_address in acme-milan = %+v, want the default", got)
	}

	// Both changes are audited with the tenant before and after.
	events := audited()
	if len(events) != 2 {
		t.Fatalf("audit has %d action.policy events, want 2: %+v", len(events), events)
	}
	for _, e := range events {
		if e.Target != "tenant/acme-berlin" || e.Actor != "user:olga@acme.example" || len(e.Before) == 0 || len(e.After) == 0 {
			t.Errorf("audit event %+v, want olga's change of tenant/acme-berlin with before and after", e)
		}
	}
	if !strings.Contains(string(events[1].After), `"requires_confirmation":false`) || strings.Contains(string(events[1].Before), `"requires_confirmation":false`) {
		t.Errorf("the second event has before %s, after %s", events[1].Before, events[1].After)
	}

	before := f.version()
	bad := []struct {
		name, action, body string
		status             int
		code, field        string
	}{
		{"unknown action type", "launch_rocket", `{"enabled": true}`, http.StatusNotFound, gatehouse.CodeNotFound, ""},
		{"unknown action type, empty body", "launch_rocket", `{}`, http.StatusNotFound, gatehouse.CodeNotFound, ""},
		{"unknown field", "update_address", `{"limits": {"max_count": 1}}`, http.StatusBadRequest, gatehouse.CodeInvalid, "limits"},
		{"wrong type", "update_address", `{"enabled": "yes"}`, http.StatusBadRequest, gatehouse.CodeInvalid, "enabled"},
		{"not an object", "update_address", `[true]`, http.StatusBadRequest, gatehouse.CodeInvalid, ""},
		{"trailing data", "update_address", `{"enabled": false} {}`, http.StatusBadRequest, gatehouse.CodeInvalid, ""},
	}
	for _, b := range bad {
		wantError(t, b.name, put(b.action, b.body), b.status, b.code, b.field)
	}
	if f.version() != before || len(audited()) != 2 {
		t.Errorf("refused updates changed the policy: version %d → %d", before, f.version())
	}

	// DELETE: the store inherits again.
	r := f.as(f.olga, "acme-berlin", call{method: http.MethodDelete, path: "/api/v1/permissions/update_address"})
	if got := decodeInto[permRow](t, r); got.Enabled || got.EnabledFrom != "default" || !got.RequiresConfirmation || got.RequiresConfirmationFrom != "default" {
		t.Errorf("DELETE update_address = %d %+v, want the default", r.status, got)
	}
	wantError(t, "DELETE an unknown action type", f.as(f.olga, "acme-berlin", call{method: http.MethodDelete, path: "/api/v1/permissions/launch_rocket"}),
		http.StatusNotFound, gatehouse.CodeNotFound, "")
	if len(audited()) != 3 {
		t.Errorf("the DELETE was not audited")
	}
}

func TestPermissionsTenant(t *testing.T) {
	t.Parallel()
	f := newPermFixture(t)
	// tina administers acme-milan, the one tenant she lists.
	if r := f.do(call{method: http.MethodPut, path: "/api/v1/users/tina@acme.example", token: f.admin,
		body: `{"tenants": ["acme-milan"], "roles": [{"role": "AI Administrator", "tenant": "acme-milan"}]}`}); r.status != http.StatusCreated {
		t.Fatalf("create tina: %d %s", r.status, r.body)
	}
	claim := func(subject, tenant string) string {
		now := time.Now()
		return sign(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": subject, "tenant": tenant,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	}
	r := f.do(call{path: "/api/v1/api-keys", token: f.admin, body: `{"name": "olga's", "subject": "user:olga@acme.example", "scopes": ["admin"]}`})
	var issued struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(r.body, &issued); err != nil || issued.Token == "" {
		t.Fatalf("issue an API key: %d %s", r.status, r.body)
	}
	tests := []struct {
		name, token, header, query string
		status                     int
		tenant, code, field        string
	}{
		{"header", f.olga, "acme-berlin", "", http.StatusOK, "acme-berlin", "", ""},
		{"header before query", f.olga, "acme-berlin", "acme-milan", http.StatusOK, "acme-berlin", "", ""},
		{"query", f.olga, "", "acme-milan", http.StatusOK, "acme-milan", "", ""},
		{"claim", claim("user:olga@acme.example", "acme-milan"), "", "", http.StatusOK, "acme-milan", "", ""},
		{"query before claim", claim("user:olga@acme.example", "acme-milan"), "", "acme", http.StatusOK, "acme", "", ""},
		{"the user's one tenant", f.token("user:tina@acme.example"), "", "", http.StatusOK, "acme-milan", "", ""},
		{"an API key carries no tenant", issued.Token, "", "", http.StatusBadRequest, "", gatehouse.CodeInvalid, "tenant"},
		{"an API key with a query", issued.Token, "", "acme", http.StatusOK, "acme", "", ""},
		{"a user with three tenants", f.olga, "", "", http.StatusBadRequest, "", gatehouse.CodeInvalid, "tenant"},
		{"a superuser without tenants", f.admin, "", "", http.StatusBadRequest, "", gatehouse.CodeInvalid, "tenant"},
		{"a superuser anywhere", f.admin, "globex", "", http.StatusOK, "globex", "", ""},
		{"an unknown tenant", f.admin, "nowhere", "", http.StatusNotFound, "", gatehouse.CodeNotFound, ""},
		{"outside the admin's tenants", f.olga, "globex", "", http.StatusForbidden, "", "forbidden", ""},
		{"a claim outside the admin's tenants", claim("user:tina@acme.example", "acme-berlin"), "", "", http.StatusForbidden, "", "forbidden", ""},
		{"not an admin, one tenant", f.token("user:carl@acme.example"), "", "", http.StatusForbidden, "", "forbidden", ""},
		{"not an admin, a tenant named", f.token("user:carl@acme.example"), "acme-berlin", "", http.StatusForbidden, "", "forbidden", ""},
		{"no token", "", "acme", "", http.StatusUnauthorized, "", "unauthorized", ""},
	}
	for _, tc := range tests {
		for _, path := range []string{"/api/v1/permissions", "/api/v1/permissions/limits"} {
			if tc.query != "" {
				path += "?tenant=" + tc.query
			}
			r := f.as(tc.token, tc.header, call{method: http.MethodGet, path: path})
			if tc.status != http.StatusOK {
				wantError(t, tc.name+": GET "+path, r, tc.status, tc.code, tc.field)
				continue
			}
			var rows []struct {
				Tenant string `json:"tenant"`
			}
			// globex has no limits, every tenant has permissions.
			if err := json.Unmarshal(r.body, &rows); err != nil || r.status != http.StatusOK || (len(rows) == 0 && tc.tenant != "globex") {
				t.Errorf("%s: GET %s = %d %s", tc.name, path, r.status, r.body)
				continue
			}
			for _, row := range rows {
				if row.Tenant != tc.tenant {
					t.Errorf("%s: GET %s has a row of %s, want %s", tc.name, path, row.Tenant, tc.tenant)
				}
			}
		}
	}
	// Writes resolve the tenant the same way.
	r = f.do(call{method: http.MethodPut, path: "/api/v1/permissions/update_address", token: f.token("user:tina@acme.example"), body: `{"enabled": true}`})
	if got := decodeInto[permRow](t, r); got.Tenant != "acme-milan" || got.EnabledFrom != "tenant:acme-milan" {
		t.Errorf("tina's PUT = %d %+v, want acme-milan's own", r.status, got)
	}
	before := f.version()
	wantError(t, "PUT outside the admin's tenants", f.as(f.olga, "globex", call{method: http.MethodPut,
		path: "/api/v1/permissions/update_address", body: `{"enabled": true}`}), http.StatusForbidden, "forbidden", "")
	wantError(t, "POST a limit as a non-admin", f.as(f.token("user:carl@acme.example"), "acme-berlin", call{path: "/api/v1/permissions/limits",
		body: `{"action_type": "process_refund", "limit_type": "max_amount", "limit_value": "1"}`}), http.StatusForbidden, "forbidden", "")
	if f.version() != before {
		t.Errorf("forbidden writes changed the policy")
	}
}

func TestLimitsList(t *testing.T) {
	t.Parallel()
	f := newPermFixture(t)
	want := []limRow{
		{StoreID: "acme-berlin", Tenant: "acme-berlin", ActionType: "apply_discount", LimitType: "max_percentage", LimitValue: "15", Source: "tenant:acme"},
		{StoreID: "acme-berlin", Tenant: "acme-berlin", ActionType: "process_refund", LimitType: "max_amount", LimitValue: "50.00", Currency: "EUR", Source: "tenant:acme-berlin"},
		{StoreID: "acme-berlin", Tenant: "acme-berlin", ActionType: "process_refund", LimitType: "max_count", LimitValue: "20", Window: "24h", TimeWindowHours: 24, Source: "tenant:acme-berlin"},
		{StoreID: "acme-berlin", Tenant: "acme-berlin", ActionType: "process_refund", LimitType: "max_total_amount", LimitValue: "500.00", Currency: "EUR", Window: "24h", TimeWindowHours: 24, Source: "tenant:acme-berlin"},
	}
	got := f.limits("acme-berlin")
	if diff := cmp.Diff(want, got, ignoreIDs); diff != "" {
		t.Errorf("limits in acme-berlin (-want +got):\n%s", diff)
	}
	ids := map[string]bool{}
	for _, row := range got {
		wantID := uuid.NewSHA1(uuid.MustParse("6288ee9e-6558-42a3-ad27-d98c2a4bedbf"),
			[]byte(row.Tenant+"\x00"+row.ActionType+"\x00"+row.LimitType)).String()
		if row.ID != wantID || row.PolicyVersion != f.version() || ids[row.ID] {
			t.Errorf("limit row %+v: want id %s, version %d, unique", row, wantID, f.version())
		}
		ids[row.ID] = true
	}
	if got := f.limits("globex"); len(got) != 0 {
		t.Errorf("limits in globex = %+v, want none", got)
	}
}

// Setting a limit in acme-milan, which inherits acme's, makes acme's limits
// acme-milan's own with the one limit changed; acme and acme-berlin keep
// theirs.
func TestLimitsSet(t *testing.T) {
	t.Parallel()
	amount := limRow{ActionType: "process_refund", LimitType: "max_amount", LimitValue: "100", Currency: "EUR"}
	count := limRow{ActionType: "process_refund", LimitType: "max_count", LimitValue: "50", Window: "24h", TimeWindowHours: 24}
	total := limRow{ActionType: "process_refund", LimitType: "max_total_amount", LimitValue: "1000", Currency: "EUR", Window: "24h", TimeWindowHours: 24}
	within := func(r limRow, window string, hours int64) limRow {
		r.Window, r.TimeWindowHours = window, hours
		return r
	}
	tests := []struct {
		name string
		body string
		want limRow
		// also are the action's other limits, which the store now owns.
		also []limRow
	}{
		{"max_amount, the inherited currency", `{"action_type": "process_refund", "limit_type": "max_amount", "limit_value": "80.00"}`,
			limRow{ActionType: "process_refund", LimitType: "max_amount", LimitValue: "80.00", Currency: "EUR"}, []limRow{count, total}},
		{"max_total_amount as a number, currency restated", `{"action_type": "process_refund", "limit_type": "max_total_amount", "limit_value": 900, "window": "24h", "currency": "EUR"}`,
			limRow{ActionType: "process_refund", LimitType: "max_total_amount", LimitValue: "900", Currency: "EUR", Window: "24h", TimeWindowHours: 24},
			[]limRow{amount, count}},
		{"max_count in hours moves the window", `{"action_type": "process_refund", "limit_type": "max_count", "limit_value": "10", "time_window_hours": 12}`,
			limRow{ActionType: "process_refund", LimitType: "max_count", LimitValue: "10", Window: "12h", TimeWindowHours: 12},
			[]limRow{amount, within(total, "12h", 12)}},
		{"time_window is max_count", `{"action_type": "process_refund", "limit_type": "time_window", "limit_value": 3, "window": "90m"}`,
			limRow{ActionType: "process_refund", LimitType: "time_window", LimitValue: "3", Window: "90m"},
			[]limRow{amount, within(total, "90m", 0)}},
		{"window and hours that agree", `{"action_type": "update_address", "limit_type": "max_count", "limit_value": 5, "window": "1h", "time_window_hours": 1}`,
			limRow{ActionType: "update_address", LimitType: "max_count", LimitValue: "5", Window: "1h", TimeWindowHours: 1}, nil},
		{"max_percentage", `{"action_type": "apply_discount", "limit_type": "max_percentage", "limit_value": "12.5"}`,
			limRow{ActionType: "apply_discount", LimitType: "max_percentage", LimitValue: "12.5"}, nil},
		{"a first amount limit with its currency", `{"action_type": "lookup_order", "limit_type": "max_amount", "limit_value": "10", "currency": "JPY"}`,
			limRow{ActionType: "lookup_order", LimitType: "max_amount", LimitValue: "10", Currency: "JPY"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newPermFixture(t)
			acme, berlin := f.limits("acme"), f.limits("acme-berlin")
			r := f.as(f.olga, "acme-milan", call{path: "/api/v1/permissions/limits", body: tc.body})
			if r.status != http.StatusOK {
				t.Fatalf("POST %s: %d %s", tc.body, r.status, r.body)
			}
			got := decodeInto[limRow](t, r)
			want := tc.want
			want.StoreID, want.Tenant, want.Source = "acme-milan", "acme-milan", "tenant:acme-milan"
			if diff := cmp.Diff(want, got, ignoreIDs); diff != "" {
				t.Errorf("POST %s (-want +got):\n%s", tc.body, diff)
			}
			if got.PolicyVersion != f.version() {
				t.Errorf("the row is at version %d, the policy at %d", got.PolicyVersion, f.version())
			}
			// The list has the row under its own type, with the same id.
			canonical := want
			if canonical.LimitType == "time_window" {
				canonical.LimitType = "max_count"
			}
			rows := f.limits("acme-milan")
			var listed []limRow
			for _, row := range rows {
				if row.ActionType == want.ActionType {
					listed = append(listed, row)
				}
				if row.ActionType == want.ActionType && row.LimitType == canonical.LimitType && row.ID != got.ID {
					t.Errorf("the list's id %s differs from the POST's %s", row.ID, got.ID)
				}
			}
			wantListed := []limRow{canonical}
			for _, a := range tc.also {
				a.StoreID, a.Tenant, a.Source = "acme-milan", "acme-milan", "tenant:acme-milan"
				wantListed = append(wantListed, a)
			}
			if diff := cmp.Diff(wantListed, listed, ignoreIDs, cmpopts.SortSlices(func(a, b limRow) bool { return a.LimitType < b.LimitType })); diff != "" {
				t.Errorf("%s's limits in acme-milan (-want +got):\n%s", want.ActionType, diff)
			}
			if diff := cmp.Diff(acme, f.limits("acme"), ignoreIDs); diff != "" {
				t.Errorf("acme's limits changed (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(berlin, f.limits("acme-berlin"), ignoreIDs); diff != "" {
				t.Errorf("acme-berlin's limits changed (-before +after):\n%s", diff)
			}
		})
	}
}

// A refused limit names its field and stores nothing.
func TestLimitsRefused(t *testing.T) {
	t.Parallel()
	f := newPermFixture(t)
	limit := func(action, typ, value, rest string) string {
		b := fmt.Sprintf(`{"action_type": %q, "limit_type": %q`, action, typ)
		if value != "" {
			b += `, "limit_value": ` + value
		}
		return b + rest + "}"
	}
	tests := []struct {
		name, body string
		status     int
		code       string
		field      string
	}{
		{"negative", limit("process_refund", "max_amount", `"-5"`, ""), 400, gatehouse.CodeInvalid, "limit_value"},
		{"negative number", limit("process_refund", "max_amount", `-5`, ""), 400, gatehouse.CodeInvalid, "limit_value"},
		{"zero", limit("process_refund", "max_amount", `0`, ""), 400, gatehouse.CodeInvalid, "limit_value"},
		{"not a number", limit("process_refund", "max_amount", `"abc"`, ""), 400, gatehouse.CodeInvalid, "limit_value"},
		{"NaN", limit("process_refund", "max_amount", `"NaN"`, ""), 400, gatehouse.CodeInvalid, "limit_value"},
		{"Infinity", limit("apply_discount", "max_percentage", `"Infinity"`, ""), 400, gatehouse.CodeInvalid, "limit_value"},
		{"a boolean", limit("process_refund", "max_amount", `true`, ""), 400, gatehouse.CodeInvalid, "limit_value"},
		{"null", limit("process_refund", "max_amount", `null`, ""), 400, gatehouse.CodeInvalid, "limit_value"},
		{"missing value", limit("process_refund", "max_amount", ``, ""), 400, gatehouse.CodeInvalid, "limit_value"},
		{"huge amount", limit("process_refund", "max_amount", `"1e30"`, ""), 400, gatehouse.CodeInvalid, "limit_value"},
		{"huge amount as a number", limit("process_refund", "max_amount", `99999999999999999999999`, ""), 400, gatehouse.CodeInvalid, "limit_value"},
		{"more decimals than the currency", limit("process_refund", "max_amount", `"10.001"`, ""), 400, gatehouse.CodeInvalid, "limit_value"},
		{"percentage 101", limit("apply_discount", "max_percentage", `101`, ""), 400, gatehouse.CodeInvalid, "limit_value"},
		{"percentage 0", limit("apply_discount", "max_percentage", `"0"`, ""), 400, gatehouse.CodeInvalid, "limit_value"},
		{"count not whole", limit("process_refund", "max_count", `2.5`, `, "window": "1h"`), 400, gatehouse.CodeInvalid, "limit_value"},
		{"count zero", limit("process_refund", "time_window", `0`, `, "window": "1h"`), 400, gatehouse.CodeInvalid, "limit_value"},
		{"huge count", limit("process_refund", "max_count", `99999999999999999999`, `, "window": "1h"`), 400, gatehouse.CodeInvalid, "limit_value"},
		{"missing window for max_count", limit("process_refund", "max_count", `5`, ""), 400, gatehouse.CodeInvalid, "window"},
		{"missing window for time_window", limit("process_refund", "time_window", `5`, ""), 400, gatehouse.CodeInvalid, "window"},
		{"missing window for max_total_amount", limit("process_refund", "max_total_amount", `5`, ""), 400, gatehouse.CodeInvalid, "window"},
		{"window 0s", limit("process_refund", "max_count", `5`, `, "window": "0s"`), 400, gatehouse.CodeInvalid, "window"},
		{"window not a duration", limit("process_refund", "max_count", `5`, `, "window": "a day"`), 400, gatehouse.CodeInvalid, "window"},
		{"window too long", limit("process_refund", "max_count", `5`, `, "window": "10000h"`), 400, gatehouse.CodeInvalid, "window"},
		{"hours 0", limit("process_refund", "max_count", `5`, `, "time_window_hours": 0`), 400, gatehouse.CodeInvalid, "time_window_hours"},
		{"hours negative", limit("process_refund", "max_count", `5`, `, "time_window_hours": -24`), 400, gatehouse.CodeInvalid, "time_window_hours"},
		{"hours too many", limit("process_refund", "max_count", `5`, `, "time_window_hours": 10000`), 400, gatehouse.CodeInvalid, "time_window_hours"},
		{"hours not whole", limit("process_refund", "max_count", `5`, `, "time_window_hours": 1.5`), 400, gatehouse.CodeInvalid, "time_window_hours"},
		{"window and hours disagree", limit("process_refund", "max_count", `5`, `, "window": "2h", "time_window_hours": 3`), 400, gatehouse.CodeInvalid, "time_window_hours"},
		{"a window for max_amount", limit("process_refund", "max_amount", `5`, `, "window": "1h"`), 400, gatehouse.CodeInvalid, "window"},
		{"hours for max_percentage", limit("apply_discount", "max_percentage", `5`, `, "time_window_hours": 1`), 400, gatehouse.CodeInvalid, "time_window_hours"},
		{"a currency for max_percentage", limit("apply_discount", "max_percentage", `5`, `, "currency": "EUR"`), 400, gatehouse.CodeInvalid, "currency"},
		{"no currency anywhere", limit("send_tracking", "max_amount", `5`, ""), 400, gatehouse.CodeInvalid, "currency"},
		{"not a currency", limit("send_tracking", "max_amount", `5`, `, "currency": "EURO"`), 400, gatehouse.CodeInvalid, "currency"},
		{"a currency unlike the other amount's", limit("process_refund", "max_amount", `5`, `, "currency": "USD"`), 400, gatehouse.CodeInvalid, "currency"},
		{"unknown limit type", limit("process_refund", "max_speed", `5`, ""), 400, gatehouse.CodeInvalid, "limit_type"},
		{"no limit type", `{"action_type": "process_refund", "limit_value": 5}`, 400, gatehouse.CodeInvalid, "limit_type"},
		{"no action type", `{"limit_type": "max_amount", "limit_value": 5}`, 400, gatehouse.CodeInvalid, "action_type"},
		{"unknown field", limit("process_refund", "max_amount", `5`, `, "created_at": "2026-01-01T00:00:00Z"`), 400, gatehouse.CodeInvalid, "created_at"},
		{"not an object", `[]`, 400, gatehouse.CodeInvalid, ""},
		{"unknown action type", limit("launch_rocket", "max_amount", `"-5"`, ""), 404, gatehouse.CodeNotFound, ""},
	}
	before, limits := f.version(), f.limits("acme-berlin")
	for _, tc := range tests {
		wantError(t, tc.name, f.as(f.olga, "acme-berlin", call{path: "/api/v1/permissions/limits", body: tc.body}), tc.status, tc.code, tc.field)
	}
	if f.version() != before {
		t.Errorf("refused limits moved the policy version from %d to %d", before, f.version())
	}
	if diff := cmp.Diff(limits, f.limits("acme-berlin")); diff != "" {
		t.Errorf("refused limits changed acme-berlin's (-before +after):\n%s", diff)
	}
}

func TestLimitsDelete(t *testing.T) {
	t.Parallel()
	f := newPermFixture(t)
	del := func(tenant, action, typ string) response {
		return f.as(f.olga, tenant, call{method: http.MethodDelete, path: "/api/v1/permissions/limits/" + action + "/" + typ})
	}
	storedLimits := func(tenant, action string) *gatehouse.ActionLimits {
		t.Helper()
		r := f.do(call{method: http.MethodGet, path: "/api/v1/tenants/" + tenant, token: f.admin})
		var tn gatehouse.Tenant
		if err := json.Unmarshal(r.body, &tn); err != nil || r.status != http.StatusOK {
			t.Fatalf("GET tenant %s: %d %s", tenant, r.status, r.body)
		}
		return tn.Actions[action].Limits
	}
	steps := []struct {
		tenant, action, typ string
		remaining           []string
		// stored is the tenant's own limits afterwards.
		stored gatehouse.ActionLimits
	}{
		{"acme-berlin", "process_refund", "max_total_amount", []string{"max_amount", "max_count"},
			gatehouse.ActionLimits{Currency: "EUR", MaxAmount: "50.00", Window: "24h", MaxCount: new(int64(20))}},
		// The last windowed limit takes the window with it.
		{"acme-berlin", "process_refund", "time_window", []string{"max_amount"}, gatehouse.ActionLimits{Currency: "EUR", MaxAmount: "50.00"}},
		// The last amount takes the currency.
		{"acme-berlin", "process_refund", "max_amount", []string{}, gatehouse.ActionLimits{}},
		// An inherited limit: the store now has none of its own, and acme keeps its.
		{"acme-milan", "apply_discount", "max_percentage", []string{}, gatehouse.ActionLimits{}},
	}
	for _, s := range steps {
		r := del(s.tenant, s.action, s.typ)
		if r.status != http.StatusOK {
			t.Fatalf("DELETE %s %s in %s: %d %s", s.action, s.typ, s.tenant, r.status, r.body)
		}
		types := []string{}
		for _, row := range decodeInto[[]limRow](t, r) {
			types = append(types, row.LimitType)
			if row.Source != "tenant:"+s.tenant || row.PolicyVersion != f.version() {
				t.Errorf("DELETE %s %s in %s left %+v", s.action, s.typ, s.tenant, row)
			}
		}
		if !cmp.Equal(types, s.remaining) {
			t.Errorf("DELETE %s %s in %s left %v, want %v", s.action, s.typ, s.tenant, types, s.remaining)
		}
		if got := storedLimits(s.tenant, s.action); got == nil || !cmp.Equal(*got, s.stored) {
			t.Errorf("after DELETE %s %s, %s's own limits are %+v, want %+v", s.action, s.typ, s.tenant, got, s.stored)
		}
	}
	for _, row := range f.limits("acme-milan") {
		if row.ActionType == "apply_discount" {
			t.Errorf("acme-milan still lists %+v", row)
		}
	}
	if got := storedLimits("acme", "apply_discount"); got == nil || got.MaxPercentage != "15" {
		t.Errorf("acme's apply_discount limits = %+v, want its 15%%", got)
	}

	before := f.version()
	for _, b := range []struct{ name, tenant, action, typ string }{
		{"a limit already removed", "acme-berlin", "process_refund", "max_amount"},
		{"a limit the action never had", "acme-berlin", "lookup_order", "max_count"},
		{"an unknown limit type", "acme-berlin", "process_refund", "max_speed"},
		{"an unknown action type", "acme-berlin", "launch_rocket", "max_amount"},
	} {
		wantError(t, b.name, del(b.tenant, b.action, b.typ), http.StatusNotFound, gatehouse.CodeNotFound, "")
	}
	wantError(t, "outside the admin's tenants", del("globex", "process_refund", "max_amount"), http.StatusForbidden, "forbidden", "")
	if f.version() != before {
		t.Errorf("refused deletes moved the policy version")
	}
}

// Every limit change is one audited policy change of the tenant.
func TestLimitsAudited(t *testing.T) {
	t.Parallel()
	f := newPermFixture(t)
	for _, c := range []call{
		{path: "/api/v1/permissions/limits", body: `{"action_type": "process_refund", "limit_type": "max_amount", "limit_value": "40.00"}`},
		{method: http.MethodDelete, path: "/api/v1/permissions/limits/process_refund/max_count"},
	} {
		if r := f.as(f.olga, "acme-berlin", c); r.status != http.StatusOK {
			t.Fatalf("%s %s: %d %s", c.method, c.path, r.status, r.body)
		}
	}
	r := f.do(call{method: http.MethodGet, path: "/api/v1/audit?action=action.policy&target=tenant/acme-berlin", token: f.admin})
	var page struct {
		Events []gatehouse.AuditEvent `json:"events"`
	}
	if err := json.Unmarshal(r.body, &page); err != nil || len(page.Events) != 2 {
		t.Fatalf("audit: %d %s, want two events", r.status, r.body)
	}
	set, removed := page.Events[0], page.Events[1]
	if !strings.Contains(string(set.Before), `"max_amount":"50.00"`) || !strings.Contains(string(set.After), `"max_amount":"40.00"`) ||
		!strings.Contains(string(removed.Before), `"max_count":20`) || strings.Contains(string(removed.After), `"max_count"`) {
		t.Errorf("audit events:\n%s → %s\n%s → %s", set.Before, set.After, removed.Before, removed.After)
	}
	for _, e := range page.Events {
		if e.Actor != "user:olga@acme.example" {
			t.Errorf("audit event by %s, want olga", e.Actor)
		}
	}
}

// The usage of each windowed limit counts the actions the guard reserved in
// the window; only administrators of the tenant may read it.
func TestActionUsage(t *testing.T) {
	t.Parallel()
	f := newPermFixture(t)
	usage := func() []gatehouse.WindowUsage {
		t.Helper()
		r := f.as(f.olga, "acme-berlin", call{method: http.MethodGet, path: "/api/v1/permissions/usage"})
		if r.status != http.StatusOK {
			t.Fatalf("usage = %d %s", r.status, r.body)
		}
		var out []gatehouse.WindowUsage
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := []gatehouse.WindowUsage{{Action: "process_refund", Window: "24h", Count: 0, MaxCount: 20,
		Total: "0.00", MaxTotal: "500.00", Currency: "EUR"}}
	if diff := cmp.Diff(want, usage()); diff != "" {
		t.Fatalf("usage before any refund (-want +got):\n%s", diff)
	}
	r := f.as(f.admin, "acme-berlin", call{method: http.MethodPost, path: "/api/v1/actions/authorize",
		body: `{"subject":"agent:support-bot","on_behalf_of":"user:olga@acme.example","tool":"process_refund","args":{"amount":"20.00","currency":"EUR","order_id":"1042"}}`})
	if r.status != http.StatusOK {
		t.Fatalf("authorize = %d %s", r.status, r.body)
	}
	want[0].Count, want[0].Total = 1, "20.00"
	if diff := cmp.Diff(want, usage()); diff != "" {
		t.Errorf("usage after a refund (-want +got):\n%s", diff)
	}
	for _, tt := range []struct{ who, tenant string }{{"user:carl@acme.example", "acme-berlin"}, {"user:olga@acme.example", "globex"}} {
		if r := f.as(f.token(tt.who), tt.tenant, call{method: http.MethodGet, path: "/api/v1/permissions/usage"}); r.status != http.StatusForbidden {
			t.Errorf("usage as %s in %s = %d, want 403", tt.who, tt.tenant, r.status)
		}
	}
}
