package mcpgw_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/mcpgw"
)

// itemRules shows the store's resources and resource templates to holders
// of orders.lookup (Olga), its customer template to holders of
// fetch_customer instead (Carl, not Olga), and its prompt to holders of
// payments.refund (Olga).
func itemRules(c *mcpgw.Config) {
	c.Upstreams[0].Resources = "permission orders.lookup"
	c.Upstreams[0].ResourceItems = map[string]string{"store://customers/{customer_id}": "permission fetch_customer"}
	c.Upstreams[0].Prompts = "permission payments.refund"
}

func (c *client) resources(t *testing.T) (uris, templates []string) {
	t.Helper()
	for r, err := range c.Resources(context.Background(), nil) {
		if err != nil {
			t.Fatalf("resources/list: %v", err)
		}
		uris = append(uris, r.URI)
	}
	for r, err := range c.ResourceTemplates(context.Background(), nil) {
		if err != nil {
			t.Fatalf("resources/templates/list: %v", err)
		}
		templates = append(templates, r.URITemplate)
	}
	slices.Sort(uris)
	slices.Sort(templates)
	return uris, templates
}

func (c *client) prompts(t *testing.T) []string {
	t.Helper()
	var names []string
	for p, err := range c.Prompts(context.Background(), nil) {
		if err != nil {
			t.Fatalf("prompts/list: %v", err)
		}
		names = append(names, p.Name)
	}
	return names
}

func (c *client) read(uri string) (string, error) {
	res, err := c.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: uri})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, c := range res.Contents {
		b.WriteString(c.Text)
	}
	return b.String(), nil
}

// refusedWith reports whether err is the gateway's JSON-RPC refusal with
// reason in its data.
func refusedWith(err error, reason gatehouse.Reason) bool {
	var e *jsonrpc.Error
	if !errors.As(err, &e) {
		return false
	}
	var data struct {
		Reason string `json:"reason"`
	}
	return json.Unmarshal(e.Data, &data) == nil && data.Reason == string(reason)
}

// Each caller lists the resources, resource templates and prompts its
// permissions show, reads and gets those, and is refused the others; a
// refused read or get never reaches the upstream.
func TestResourcesAndPrompts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, itemRules)
	for _, v := range protocols {
		olga := f.connect("user:olga@acme.example", "acme-berlin", v, nil)
		uris, templates := olga.resources(t)
		if !slices.Equal(uris, []string{"store://policies/returns"}) || !slices.Equal(templates, []string{"store://orders/{order_id}"}) {
			t.Errorf("protocol %q: olga's resources = %v, templates %v", v, uris, templates)
		}
		if got := olga.prompts(t); !slices.Equal(got, []string{"refund_reply"}) {
			t.Errorf("protocol %q: olga's prompts = %v", v, got)
		}
		if got, err := olga.read("store://orders/A-7"); err != nil || got != "Order A-7: shipped." {
			t.Errorf("protocol %q: olga reads store://orders/A-7 = %q, %v", v, got, err)
		}
		if got, err := olga.read("store://policies/returns"); err != nil || !strings.Contains(got, "30 days") {
			t.Errorf("protocol %q: olga reads the returns policy = %q, %v", v, got, err)
		}
		p, err := olga.GetPrompt(context.Background(), &mcp.GetPromptParams{Name: "refund_reply", Arguments: map[string]string{"order_id": "A-7"}})
		if err != nil || len(p.Messages) != 1 || !strings.Contains(p.Messages[0].Content.(*mcp.TextContent).Text, "order A-7 is refunded") {
			t.Errorf("protocol %q: olga gets refund_reply = %+v, %v", v, p, err)
		}

		carl := f.connect("user:carl@acme.example", "acme-berlin", v, nil)
		uris, templates = carl.resources(t)
		if len(uris) != 0 || !slices.Equal(templates, []string{"store://customers/{customer_id}"}) {
			t.Errorf("protocol %q: carl's resources = %v, templates %v", v, uris, templates)
		}
		if got := carl.prompts(t); len(got) != 0 {
			t.Errorf("protocol %q: carl's prompts = %v, want none", v, got)
		}
		if got, err := carl.read("store://customers/C-1"); err != nil || got != "Customer C-1: 3 orders." {
			t.Errorf("protocol %q: carl reads store://customers/C-1 = %q, %v", v, got, err)
		}
		before := map[string]int{}
		for _, k := range []string{"read store://policies/returns", "read store://orders/A-8", "read store://customers/C-2", "prompt refund_reply"} {
			before[k] = f.store.Calls(k)
		}
		for _, tc := range []struct {
			who *client
			uri string
		}{{carl, "store://policies/returns"}, {carl, "store://orders/A-8"}, {olga, "store://customers/C-2"}} {
			if got, err := tc.who.read(tc.uri); err == nil {
				t.Errorf("protocol %q: a read of %s it is not shown = %q, want refused", v, tc.uri, got)
			}
		}
		if _, err := carl.GetPrompt(context.Background(), &mcp.GetPromptParams{Name: "refund_reply", Arguments: map[string]string{"order_id": "A-8"}}); err == nil {
			t.Errorf("protocol %q: carl got refund_reply", v)
		}
		for k, n := range before {
			if got := f.store.Calls(k); got != n {
				t.Errorf("protocol %q: a refused %s reached the upstream", v, k)
			}
		}
	}
}

// A permission revoked after the list was built is refused at read and
// get time, with the reason, before the session's list is refreshed.
func TestItemsDecidedAtReadTime(t *testing.T) {
	t.Parallel()
	f := newFixture(t, itemRules)
	olga := f.connect("user:olga@acme.example", "acme-berlin", "2025-11-25", nil)
	if uris, _ := olga.resources(t); len(uris) != 1 {
		t.Fatalf("olga's resources = %v", uris)
	}
	f.stopRun()
	if _, err := f.svc.Unbind(context.Background(), "test", gatehouse.User("olga@acme.example"), "Store Support", "acme"); err != nil {
		t.Fatal(err)
	}
	if got, err := olga.read("store://policies/returns"); !refusedWith(err, gatehouse.ReasonPermissionMissing) {
		t.Errorf("read after the revocation = %q, %v, want refused with permission_missing", got, err)
	}
	if _, err := olga.GetPrompt(context.Background(), &mcp.GetPromptParams{Name: "refund_reply", Arguments: map[string]string{"order_id": "A-9"}}); !refusedWith(err, gatehouse.ReasonPermissionMissing) {
		t.Errorf("prompts/get after the revocation = %v, want refused with permission_missing", err)
	}
	if f.store.Calls("read store://policies/returns") != 0 || f.store.Calls("prompt refund_reply") != 0 {
		t.Error("a refused read or get reached the upstream")
	}
}

// A session is told when its resources and prompts change.
func TestItemsListChanged(t *testing.T) {
	t.Parallel()
	for _, v := range protocols {
		f := newFixture(t, itemRules)
		olga := f.connect("user:olga@acme.example", "acme-berlin", v, nil)
		if got := olga.prompts(t); len(got) != 1 {
			t.Fatalf("protocol %q: olga's prompts = %v", v, got)
		}
		if _, err := f.svc.Unbind(context.Background(), "test", gatehouse.User("olga@acme.example"), "Store Support", "acme"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("protocol %q: resources and prompts list_changed", v), func() bool {
			return olga.resourcesChanged.Load() > 0 && olga.promptsChanged.Load() > 0
		})
		if uris, templates := olga.resources(t); len(uris)+len(templates) != 0 {
			t.Errorf("protocol %q: after the revocation olga sees %v %v", v, uris, templates)
		}
	}
}

// The rules of resources and prompts take deny or permission NAME, like
// unmapped; anything else is invalid naming the upstream.
func TestItemRulesConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		yaml string
		ok   bool
	}{
		{"resources: permission orders.lookup\n    prompts: deny", true},
		{"resource_items: {\"store://x\": deny}\n    prompt_items: {p: permission a}", true},
		{"resources: allow", false},
		{"prompts: permission", false},
		{"prompt_items: {p: everyone}", false},
		{"resource_items: {\"\": deny}", false},
	} {
		_, err := mcpgw.ParseConfig("mcp.yaml", []byte("upstreams:\n  - name: store\n    url: http://127.0.0.1:1/mcp\n    "+tc.yaml+"\n"))
		if (err == nil) != tc.ok || (err != nil && (!errors.Is(err, gatehouse.ErrInvalid) || !strings.Contains(err.Error(), "upstream store"))) {
			t.Errorf("ParseConfig(%q) = %v, want ok %v", tc.yaml, err, tc.ok)
		}
	}
}
