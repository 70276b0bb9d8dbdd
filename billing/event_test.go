package billing_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/billing"
)

func TestDecodeEvent(t *testing.T) {
	created := time.Unix(1700000000, 0).UTC()
	tests := []struct {
		name, in string
		want     billing.Event
	}{
		{"checkout with a price in metadata",
			`{"id":"evt_1","object":"event","type":"checkout.session.completed","created":1700000000,"data":{"object":{"object":"checkout.session","customer":"cus_1","mode":"payment","payment_status":"paid","metadata":{"price_id":"price_pro"}}}}`,
			billing.Event{ID: "evt_1", Type: billing.TypeCheckoutCompleted, Created: created, Customer: "cus_1", Prices: []string{"price_pro"}, Mode: "payment", PaymentStatus: "paid"}},
		{"checkout with expanded line items and customer",
			`{"id":"evt_2","object":"event","type":"checkout.session.completed","created":1700000000,"data":{"object":{"customer":{"id":"cus_2","object":"customer"},"line_items":{"data":[{"price":{"id":"price_a"}},{"price":"price_b"},{"price":null}]}}}}`,
			billing.Event{ID: "evt_2", Type: billing.TypeCheckoutCompleted, Created: created, Customer: "cus_2", Prices: []string{"price_a", "price_b"}}},
		{"subscription",
			`{"id":"evt_3","object":"event","api_version":"2026-01-28.clover","type":"customer.subscription.updated","created":1700000000,"livemode":false,"data":{"object":{"id":"sub_1","object":"subscription","customer":"cus_3","status":"past_due","items":{"object":"list","data":[{"id":"si_1","price":{"id":"price_pro","object":"price"}}]}},"previous_attributes":{"status":"active"}}}`,
			billing.Event{ID: "evt_3", Type: billing.TypeSubscriptionUpdated, Created: created, Customer: "cus_3", Prices: []string{"price_pro"}, Status: "past_due"}},
		{"invoice without a customer",
			`{"id":"evt_4","object":"event","type":"invoice.payment_failed","created":1700000000,"data":{"object":{"customer":null}}}`,
			billing.Event{ID: "evt_4", Type: billing.TypePaymentFailed, Created: created}},
		{"an unhandled type needs only the envelope",
			`{"id":"evt_5","object":"event","type":"charge.refunded","created":1700000000}`,
			billing.Event{ID: "evt_5", Type: "charge.refunded", Created: created}},
	}
	for _, tt := range tests {
		got, err := billing.DecodeEvent([]byte(tt.in))
		if err != nil {
			t.Errorf("%s: DecodeEvent = %v", tt.name, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: DecodeEvent (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestDecodeEventRefuses(t *testing.T) {
	sub := func(object string) string {
		return `{"id":"evt_1","object":"event","type":"customer.subscription.updated","created":1700000000,"data":{"object":` + object + `}}`
	}
	for _, in := range []string{
		``, `null`, `[]`, `"event"`, `{`, `{"id":"evt_1"} trailing`,
		`{"id":"evt_1","type":"invoice.paid","created":1700000000}`,
		`{"id":"evt_1","object":"charge","type":"invoice.paid","created":1700000000}`,
		`{"object":"event","type":"invoice.paid","created":1700000000}`,
		`{"id":"evt_1","object":"event","created":1700000000}`,
		`{"id":"evt\u0000","object":"event","type":"invoice.paid","created":1700000000}`,
		`{"id":"` + strings.Repeat("e", 256) + `","object":"event","type":"invoice.paid","created":1700000000}`,
		`{"id":"evt_1","object":"event","type":"invoice.paid","created":0}`,
		`{"id":"evt_1","object":"event","type":"invoice.paid","created":-5}`,
		`{"id":"evt_1","object":"event","type":"invoice.paid","created":253402300800}`,
		`{"id":"evt_1","object":"event","type":"invoice.paid","created":"yesterday"}`,
		`{"id":"evt_1","object":"event","type":"invoice.paid","created":1.5}`,
		`{"id":7,"object":"event","type":"invoice.paid","created":1700000000}`,
		"{\"id\":\"evt_\xff\",\"object\":\"event\",\"type\":\"invoice.paid\",\"created\":1700000000}",
		sub(`"sub_1"`), sub(`null`), sub(`[]`),
		sub(`{"customer":42}`), sub(`{"customer":{"id":42}}`), sub(`{"customer":"cus\t1"}`),
		sub(`{"customer":"cus_1","items":{"data":[{"price":7}]}}`),
		sub(`{"customer":"cus_1","items":[]}`),
		sub(`{"customer":"cus_1","status":7}`),
		sub(`{"customer":"cus_1","status":"\u0007"}`),
		sub(`{"customer":"cus_1","items":{"data":[` + strings.Repeat(`{"price":"p"},`, 100) + `{"price":"p"}]}}`),
	} {
		if _, err := billing.DecodeEvent([]byte(in)); !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("DecodeEvent(%.80q) = %v, want ErrInvalid", in, err)
		}
	}
}

func TestParseConfig(t *testing.T) {
	c, err := billing.LoadConfig(filepath.Join("..", "examples", "ai-assistant", "billing.yaml"))
	if err != nil {
		t.Fatalf("LoadConfig(example) = %v", err)
	}
	c.Secrets = []string{secret}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate(example) = %v", err)
	}
	if got := c.Customers["cus_globex"]; got != (billing.Target{Kind: gatehouse.KindTenant, ID: "globex"}) {
		t.Errorf("example customer cus_globex = %+v, want tenant globex", got)
	}

	got, err := billing.ParseConfig("b.yaml", []byte(`
prices: {price_pro: pro}
customers: {cus_1: "tenant:acme", cus_2: "user:Ed@Example.org"}
grace_period: 24h
tolerance: 2m
downgrade_plan: starter
`))
	if err != nil {
		t.Fatalf("ParseConfig = %v", err)
	}
	want := billing.Config{Tolerance: 2 * time.Minute, GracePeriod: 24 * time.Hour, DowngradePlan: "starter",
		Prices: map[string]string{"price_pro": "pro"},
		Customers: map[string]billing.Target{
			"cus_1": {Kind: gatehouse.KindTenant, ID: "acme"},
			"cus_2": {Kind: gatehouse.KindUser, ID: "ed@example.org"},
		}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseConfig (-want +got):\n%s", diff)
	}
	if got, err := billing.ParseConfig("empty.yaml", nil); err != nil || got.GracePeriod != billing.DefaultGracePeriod || got.Tolerance != billing.DefaultTolerance {
		t.Errorf("ParseConfig(empty) = %+v, %v; want the defaults", got, err)
	}
	for _, in := range []string{
		`secrets: [abc]`,
		`grace_period: soon`,
		`tolerance: 5`,
		`customers: {cus_1: "acme"}`,
		`customers: {cus_1: "agent:bot"}`,
		`customers: {cus_1: "user:"}`,
		`prices: [price_pro]`,
	} {
		if _, err := billing.ParseConfig("bad.yaml", []byte(in)); !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("ParseConfig(%q) = %v, want ErrInvalid", in, err)
		}
	}
	if _, err := billing.LoadConfig(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("LoadConfig(missing) = %v, want ErrInvalid", err)
	}
}

func TestValidateConfig(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *billing.Config)
	}{
		{"no secret", func(c *billing.Config) { c.Secrets = nil }},
		{"short secret", func(c *billing.Config) { c.Secrets = []string{secret, "short"} }},
		{"zero tolerance", func(c *billing.Config) { c.Tolerance = 0 }},
		{"negative grace", func(c *billing.Config) { c.GracePeriod = -time.Second }},
		{"price without plan", func(c *billing.Config) { c.Prices = map[string]string{"price_1": ""} }},
		{"bad customer target", func(c *billing.Config) {
			c.Customers = map[string]billing.Target{"cus_1": {Kind: gatehouse.KindRole, ID: "x"}}
		}},
	}
	ok := billing.DefaultConfig()
	ok.Secrets = []string{secret}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate(defaults with a secret) = %v", err)
	}
	for _, tt := range tests {
		c := billing.DefaultConfig()
		c.Secrets = []string{secret}
		tt.edit(&c)
		if err := c.Validate(); !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", tt.name, err)
		}
	}
}

func TestUnknownPlans(t *testing.T) {
	c := testConfig()
	c.DowngradePlan = "basic"
	p := &gatehouse.Policy{Plans: []gatehouse.Plan{{Name: "free"}, {Name: "starter"}, {Name: "pro"}, {Name: "premium"}}}
	if diff := cmp.Diff([]string{"basic", "platinum"}, c.UnknownPlans(p)); diff != "" {
		t.Errorf("UnknownPlans (-want +got):\n%s", diff)
	}
}

// The fuzz corpus holds real-shaped events; keep it decodable.
func TestFuzzCorpusDecodes(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no events in testdata/events: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := billing.DecodeEvent(data); err != nil {
			t.Errorf("DecodeEvent(%s) = %v", f, err)
		}
	}
}
