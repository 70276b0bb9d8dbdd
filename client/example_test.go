package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/client"
)

// Each example runs against a real Gatehouse server (startGatehouse)
// serving examples/ai-assistant/policy.yaml.

func ExampleClient_Evaluate() {
	srv, err := startGatehouse(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	c, err := client.New(srv.URL, client.WithToken(srv.Token("user:admin@example.com")))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for _, q := range []struct{ user, tenant string }{
		{"sara@acme.example", "acme"},
		{"gina@globex.example", "globex"}, // on the free plan
	} {
		d, err := c.Evaluate(ctx, client.AccessRequest{
			Subject:  client.User(q.user),
			Action:   client.Action{Name: "detect_fraud"},
			Resource: client.Tenant(q.tenant),
		})
		if err != nil {
			log.Fatal(err)
		}
		if d.Reason == gatehouse.ReasonPlanRequired {
			fmt.Println(q.user, d.Allowed, d.Reason, "upgrade to", d.Plan)
			continue
		}
		fmt.Println(q.user, d.Allowed, d.Reason)
	}
	// Output:
	// sara@acme.example true granted
	// gina@globex.example false plan_required upgrade to pro
}

func ExampleClient_Evaluations() {
	srv, err := startGatehouse(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	c, err := client.New(srv.URL, client.WithToken(srv.Token("user:gina@globex.example")))
	if err != nil {
		log.Fatal(err)
	}
	ds, err := c.Evaluations(context.Background(), client.BatchRequest{
		Defaults: client.AccessRequest{Subject: client.User("gina@globex.example"), Resource: client.Tenant("globex")},
		Evaluations: []client.AccessRequest{
			{Action: client.Action{Name: "analyze_loan"}},
			{Action: client.Action{Name: "detect_fraud"}},
			{Action: client.Action{Name: "customer_insights"}},
		},
		Semantic: client.SemanticDenyOnFirstDeny,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range ds {
		fmt.Println(d.Allowed, d.Reason)
	}
	// Output:
	// true granted
	// false plan_required
}

func ExampleClient_SearchResources() {
	srv, err := startGatehouse(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	c, err := client.New(srv.URL, client.WithToken(srv.Token("user:sara@acme.example")))
	if err != nil {
		log.Fatal(err)
	}
	// Two tenants per request; the loop fetches the next page when it needs one.
	tenants := c.SearchResources(context.Background(), client.SearchRequest{
		Subject:  client.User("sara@acme.example"),
		Action:   client.Action{Name: "analyze_loan"},
		Resource: gatehouse.Resource{Type: gatehouse.ResourceTypeTenant},
		PageSize: 2,
	})
	for tenant, err := range tenants {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(tenant.ID)
	}
	// Output:
	// acme
	// acme-berlin
	// acme-milan
}

func ExampleClient_Check() {
	srv, err := startGatehouse(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	// Carl asks about himself; the answer's message is in German.
	c, err := client.New(srv.URL, client.WithToken(srv.Token("user:carl@acme.example")), client.WithLanguage("de"))
	if err != nil {
		log.Fatal(err)
	}
	a, err := c.Check(context.Background(), client.CheckRequest{Tool: "analyze_loan", Tenant: "acme-berlin"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Subject, a.Allowed, a.Reason, a.DeniedPermission)
	// Output: user:carl@acme.example false permission_missing use_ai_loan_tool
}

func ExampleRequirePermission() {
	srv, err := startGatehouse(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	c, err := client.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	// A service of its own: its fraud report needs use_ai_fraud_detection in
	// the tenant the path names. The caller's bearer token goes to Gatehouse.
	mux := http.NewServeMux()
	guard := client.RequirePermission(c, "use_ai_fraud_detection",
		client.WithTenant(func(r *http.Request) string { return r.PathValue("tenant") }))
	mux.Handle("GET /tenants/{tenant}/fraud-report", guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "report for", r.PathValue("tenant"))
	})))
	app := httptest.NewServer(mux)
	defer app.Close()

	for _, call := range []struct{ user, tenant string }{
		{"sara@acme.example", "acme"},
		{"gina@globex.example", "globex"},
	} {
		req, _ := http.NewRequest(http.MethodGet, app.URL+"/tenants/"+call.tenant+"/fraud-report", nil)
		req.Header.Set("Authorization", "Bearer "+srv.Token("user:"+call.user))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		if res.StatusCode == http.StatusOK {
			body, _ := io.ReadAll(res.Body)
			fmt.Print(res.StatusCode, " ", string(body))
		} else {
			// {"error": {"code": "forbidden", "reason": "plan_required",
			//   "message": "…needs the pro plan…", "plan": "pro", "feature": "advanced_analytics"}}
			var e struct {
				Error struct{ Code, Reason, Message, Plan string }
			}
			if err := json.NewDecoder(res.Body).Decode(&e); err != nil {
				log.Fatal(err)
			}
			fmt.Println(res.StatusCode, e.Error.Code, e.Error.Reason, e.Error.Plan)
		}
		res.Body.Close()
	}
	// Output:
	// 200 report for acme
	// 403 forbidden plan_required pro
}
