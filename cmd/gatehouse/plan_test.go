package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/billing"
	"github.com/gatehouse/gatehouse/service"
)

const exampleBilling = "../../examples/ai-assistant/billing.yaml"

func TestPlanSetAndShow(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	show := run(t, db, "plan", "show", "--tenant", "acme-berlin")
	if show.code != 0 || !strings.Contains(show.stdout, "effective   pro (inherited from acme)") {
		t.Errorf("plan show --tenant acme-berlin: exit %d\n%s%s", show.code, show.stdout, show.stderr)
	}
	if r := run(t, db, "check", "--subject", "user:gina@globex.example", "--tool", "detect_fraud", "--tenant", "globex"); r.code != exitDenied {
		t.Fatalf("check before plan set: exit %d, want %d", r.code, exitDenied)
	}
	if r := run(t, db, "plan", "set", "--tenant", "globex", "pro"); r.code != 0 || !strings.Contains(r.stdout, "applied 1 change(s)") {
		t.Fatalf("plan set --tenant globex pro: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, db, "check", "--subject", "user:gina@globex.example", "--tool", "detect_fraud", "--tenant", "globex"); r.code != exitOK {
		t.Errorf("check after plan set: exit %d, want allowed\n%s", r.code, r.stdout)
	}
	if r := run(t, db, "plan", "set", "--user", "Ursula@Example.org", "premium"); r.code != 0 {
		t.Fatalf("plan set --user: exit %d\n%s", r.code, r.stderr)
	}
	r := run(t, db, "plan", "show", "--user", "ursula@example.org", "--json")
	var v service.PlanView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Plan != "premium" || v.Target != "user:ursula@example.org" {
		t.Errorf("plan show --user --json = %+v, %v\n%s", v, err, r.stdout)
	}
	if r := run(t, db, "plan", "set", "--tenant", "globex", "--none"); r.code != 0 {
		t.Errorf("plan set --none: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, db, "plan", "show", "--tenant", "globex"); !strings.Contains(r.stdout, "effective   free (the lowest plan)") {
		t.Errorf("plan show after --none:\n%s", r.stdout)
	}
	audit := run(t, db, "audit", "list", "--action", "tenant.set_plan")
	if n := strings.Count(audit.stdout, "tenant.set_plan"); n != 2 {
		t.Errorf("audit list --action tenant.set_plan: %d events, want 2\n%s", n, audit.stdout)
	}

	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"plan", "set", "pro"}, exitUsage},
		{[]string{"plan", "set", "--tenant", "globex", "--user", "a@b.c", "pro"}, exitUsage},
		{[]string{"plan", "set", "--tenant", "globex"}, exitUsage},
		{[]string{"plan", "set", "--tenant", "globex", "--none", "pro"}, exitUsage},
		{[]string{"plan", "set", "--tenant", "globex", "platinum"}, exitUsage},
		{[]string{"plan", "set", "--tenant", "atlantis", "pro"}, exitUsage},
		{[]string{"plan", "show"}, exitUsage},
		{[]string{"plan", "show", "--tenant", "atlantis"}, exitUsage},
		{[]string{"plan", "show", "--user", "nobody@example.com"}, exitUsage},
	} {
		if r := run(t, db, tt.args...); r.code != tt.code {
			t.Errorf("gatehouse %s: exit %d, want %d\n%s", strings.Join(tt.args, " "), r.code, tt.code, r.stderr)
		}
	}
}

// postWebhook sends body to the running server's webhook, signed with
// secret now.
func postWebhook(t *testing.T, base, secret, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/billing/webhook", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(billing.SignatureHeader, billing.Sign([]byte(body), secret, time.Now()))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// serve with billing: a signed checkout upgrades globex at once; a failed
// payment keeps the plan until the grace period ends, when the sweep in
// serve downgrades it.
func TestServeBilling(t *testing.T) {
	db := newDB(t)
	cfg, err := os.ReadFile(exampleBilling)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "billing.yaml")
	short := strings.Replace(string(cfg), "grace_period: 72h", "grace_period: 2s", 1)
	if err := os.WriteFile(path, []byte(short), 0o644); err != nil {
		t.Fatal(err)
	}
	const secret = "whsec_serve_test_0123456789"
	t.Setenv("GATEHOUSE_JWT_SECRET", serveSecret)
	t.Setenv("GATEHOUSE_BILLING_SECRETS", "whsec_rotated_out_0123456789, "+secret)
	r := start(t, db, "serve", "--addr", "127.0.0.1:0", "--billing-config", path, "--billing-sweep-interval", "20ms")
	base := regexp.MustCompile(`serving (http://\S+)`).FindStringSubmatch(r.waitFor(t, "serving http://"))[1]
	fraud := func() int {
		return run(t, db, "check", "--subject", "user:gina@globex.example", "--tool", "detect_fraud", "--tenant", "globex").code
	}
	event := func(id, typ string, object string) string {
		return fmt.Sprintf(`{"id":%q,"object":"event","type":%q,"created":%d,"data":{"object":{"customer":"cus_globex",%s}}}`,
			id, typ, time.Now().Unix(), object)
	}
	status, body := postWebhook(t, base, secret, event("evt_1", billing.TypeCheckoutCompleted, `"payment_status":"paid","metadata":{"price_id":"price_pro_once"}`))
	if status != http.StatusOK || !strings.Contains(body, `"outcome":"applied"`) {
		t.Fatalf("webhook = %d %s", status, body)
	}
	if code := fraud(); code != exitOK {
		t.Errorf("check after the upgrade: exit %d, want allowed", code)
	}
	status, body = postWebhook(t, base, secret, event("evt_2", billing.TypePaymentFailed, `"status":"open"`))
	if status != http.StatusOK || !strings.Contains(body, `"plan":"pro"`) {
		t.Fatalf("payment failed webhook = %d %s, want the plan kept", status, body)
	}
	eventually(t, "the downgrade after the grace period", func() string {
		if code := fraud(); code != exitDenied {
			return fmt.Sprintf("exit %d", code)
		}
		return ""
	})
	if err := r.stop(t); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	if !strings.Contains(r.stderr.String(), "billing grace period ended") {
		t.Errorf("the log lacks the sweep's downgrade:\n%s", r.stderr)
	}
}

func TestServeBillingUsageErrors(t *testing.T) {
	db := newDB(t)
	t.Setenv("GATEHOUSE_BILLING_SECRETS", "")
	for _, tt := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"secret without config", []string{"--billing-secret", "whsec_0123456789abcdef"}, "--billing-config is required with --billing-secret"},
		{"missing config", []string{"--billing-config", "nope.yaml", "--billing-secret", "whsec_0123456789abcdef"}, "--billing-config"},
		{"no secret", []string{"--billing-config", exampleBilling}, "no webhook secret"},
		{"short secret", []string{"--billing-config", exampleBilling, "--billing-secret", "short"}, "at least 16"},
		{"zero sweep interval", []string{"--billing-config", exampleBilling, "--billing-secret", "whsec_0123456789abcdef", "--billing-sweep-interval", "0s"}, "--billing-sweep-interval"},
	} {
		args := append([]string{"serve", "--jwt-secret", serveSecret, "--addr", "127.0.0.1:0"}, tt.args...)
		res := run(t, db, args...)
		if res.code != exitUsage || !strings.Contains(res.stderr, tt.stderr) {
			t.Errorf("%s: exit %d, stderr %q, want exit %d naming %q", tt.name, res.code, res.stderr, exitUsage, tt.stderr)
		}
	}
}
