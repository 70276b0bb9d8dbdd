package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// The OpenFGA equivalent of examples/ai-assistant/policy.yaml, for the
// questions the load test asks: may USER call TOOL in TENANT, for the tools
// analyze_loan, detect_fraud and customer_insights. In OpenFGA's DSL:
//
//	model
//	  schema 1.1
//	type user
//	type system
//	  relations
//	    define superuser: [user]
//	type tenant
//	  relations
//	    define parent: [tenant]
//	    define system: [system]
//	    define viewer: [user]                   # visibility: an exact set, not inherited
//	    define agent_supervisor: [user] or agent_supervisor from parent   # role bindings cover the subtree
//	    define customer_service_agent: [user] or customer_service_agent from parent
//	    define ai_administrator: [user] or ai_administrator from parent
//	    define store_support: [user] or store_support from parent
//	    define advanced_analytics: [user:*] or advanced_analytics from parent   # the tenant plan's feature
//	    define access_ai_chat: agent_supervisor or customer_service_agent or ai_administrator or store_support
//	    define use_ai_loan_tool: agent_supervisor
//	    define use_ai_fraud_detection: agent_supervisor
//	    define use_ai_customer_insights: agent_supervisor or customer_service_agent
//	    define member_analyze_loan: use_ai_loan_tool and access_ai_chat and viewer
//	    define member_detect_fraud: use_ai_fraud_detection and advanced_analytics and access_ai_chat and viewer
//	    define member_customer_insights: use_ai_customer_insights and access_ai_chat and viewer
//	    define can_analyze_loan: member_analyze_loan or superuser from system   # superusers bypass RBAC, plans, visibility
//	    define can_detect_fraud: member_detect_fraud or superuser from system
//	    define can_customer_insights: member_customer_insights or superuser from system
//
// Roles are flattened to the permissions of their bundles, as the policy
// defines them; a plan's features are granted to every user of the tenant
// (user:*) and inherited by its stores. The tuples are the policy's tenants,
// visibility lists, role bindings, plans and superuser. Before any load the
// generator checks that both servers answer every question of the matrix
// alike.

// Tools, users and tenants of the request matrix.
var (
	matrixTools   = []string{"analyze_loan", "detect_fraud", "customer_insights"}
	matrixUsers   = []string{"admin@example.com", "sara@acme.example", "carl@acme.example", "olga@acme.example", "gina@globex.example", "ursula@example.org"}
	matrixTenants = []string{"acme", "acme-berlin", "acme-milan", "globex", "general"}
)

// question is one cell of the matrix: may user call tool in tenant.
type question struct{ user, tool, tenant string }

// matrix is every question, users outermost.
func matrix() []question {
	var qs []question
	for _, u := range matrixUsers {
		for _, tool := range matrixTools {
			for _, t := range matrixTenants {
				qs = append(qs, question{u, tool, t})
			}
		}
	}
	return qs
}

// rewrite builders of OpenFGA's JSON authorization model.
type rewrite = map[string]any

func direct() rewrite { return rewrite{"this": rewrite{}} }
func computed(relation string) rewrite {
	return rewrite{"computedUserset": rewrite{"relation": relation}}
}
func union(children ...rewrite) rewrite {
	return rewrite{"union": rewrite{"child": children}}
}
func intersection(children ...rewrite) rewrite {
	return rewrite{"intersection": rewrite{"child": children}}
}
func from(tupleset, relation string) rewrite {
	return rewrite{"tupleToUserset": rewrite{
		"tupleset":        rewrite{"relation": tupleset},
		"computedUserset": rewrite{"relation": relation},
	}}
}

// openFGAModel is the model above as the API takes it.
func openFGAModel() rewrite {
	userType := []rewrite{{"type": "user"}}
	inheritedRole := func(role string) rewrite { return union(direct(), from("parent", role)) }
	tenant := rewrite{
		"parent":                   direct(),
		"system":                   direct(),
		"viewer":                   direct(),
		"agent_supervisor":         inheritedRole("agent_supervisor"),
		"customer_service_agent":   inheritedRole("customer_service_agent"),
		"ai_administrator":         inheritedRole("ai_administrator"),
		"store_support":            inheritedRole("store_support"),
		"advanced_analytics":       inheritedRole("advanced_analytics"),
		"access_ai_chat":           union(computed("agent_supervisor"), computed("customer_service_agent"), computed("ai_administrator"), computed("store_support")),
		"use_ai_loan_tool":         computed("agent_supervisor"),
		"use_ai_fraud_detection":   computed("agent_supervisor"),
		"use_ai_customer_insights": union(computed("agent_supervisor"), computed("customer_service_agent")),
		"member_analyze_loan":      intersection(computed("use_ai_loan_tool"), computed("access_ai_chat"), computed("viewer")),
		"member_detect_fraud":      intersection(computed("use_ai_fraud_detection"), computed("advanced_analytics"), computed("access_ai_chat"), computed("viewer")),
		"member_customer_insights": intersection(computed("use_ai_customer_insights"), computed("access_ai_chat"), computed("viewer")),
	}
	for _, tool := range matrixTools {
		tenant["can_"+tool] = union(computed("member_"+tool), from("system", "superuser"))
	}
	types := func(ts ...rewrite) rewrite { return rewrite{"directly_related_user_types": ts} }
	return rewrite{
		"schema_version": "1.1",
		"type_definitions": []rewrite{
			{"type": "user"},
			{"type": "system", "relations": rewrite{"superuser": direct()},
				"metadata": rewrite{"relations": rewrite{"superuser": types(userType...)}}},
			{"type": "tenant", "relations": tenant, "metadata": rewrite{"relations": rewrite{
				"parent":                 types(rewrite{"type": "tenant"}),
				"system":                 types(rewrite{"type": "system"}),
				"viewer":                 types(userType...),
				"agent_supervisor":       types(userType...),
				"customer_service_agent": types(userType...),
				"ai_administrator":       types(userType...),
				"store_support":          types(userType...),
				"advanced_analytics":     types(rewrite{"type": "user", "wildcard": rewrite{}}),
			}}},
		},
	}
}

type tupleKey struct {
	User     string `json:"user"`
	Relation string `json:"relation"`
	Object   string `json:"object"`
}

// openFGATuples are the example policy's facts the model needs.
func openFGATuples() []tupleKey {
	var ts []tupleKey
	add := func(user, relation, object string) { ts = append(ts, tupleKey{user, relation, object}) }
	for _, t := range matrixTenants {
		add("system:global", "system", "tenant:"+t)
	}
	add("user:admin@example.com", "superuser", "system:global")
	add("tenant:acme", "parent", "tenant:acme-berlin")
	add("tenant:acme", "parent", "tenant:acme-milan")
	// Plans: acme is on pro (advanced_analytics), globex on free.
	add("user:*", "advanced_analytics", "tenant:acme")
	visible := map[string][]string{
		// Users without a tenant list see settings.default_tenants.
		"admin@example.com":   {"general"},
		"sara@acme.example":   {"acme", "acme-berlin", "acme-milan"},
		"carl@acme.example":   {"acme-berlin"},
		"olga@acme.example":   {"acme", "acme-berlin", "acme-milan"},
		"gina@globex.example": {"globex"},
		"ursula@example.org":  {"general"},
	}
	for _, u := range matrixUsers {
		for _, t := range visible[u] {
			add("user:"+u, "viewer", "tenant:"+t)
		}
	}
	add("user:sara@acme.example", "agent_supervisor", "tenant:acme")
	add("user:carl@acme.example", "customer_service_agent", "tenant:acme-berlin")
	add("user:olga@acme.example", "ai_administrator", "tenant:acme")
	add("user:olga@acme.example", "store_support", "tenant:acme")
	add("user:gina@globex.example", "agent_supervisor", "tenant:globex")
	return ts
}

// openFGA is a store on an OpenFGA server holding the model and tuples.
type openFGA struct {
	url, store, model string
}

// setUpOpenFGA creates a store, writes the model and the tuples.
func setUpOpenFGA(ctx context.Context, hc *http.Client, url string) (*openFGA, error) {
	f := &openFGA{url: url}
	var store struct {
		ID string `json:"id"`
	}
	if err := postJSON(ctx, hc, url+"/stores", map[string]string{"name": "gatehouse-bench"}, &store); err != nil {
		return nil, fmt.Errorf("create store: %w", err)
	}
	f.store = store.ID
	var model struct {
		ID string `json:"authorization_model_id"`
	}
	if err := postJSON(ctx, hc, f.storeURL("/authorization-models"), openFGAModel(), &model); err != nil {
		return nil, fmt.Errorf("write model: %w", err)
	}
	f.model = model.ID
	write := map[string]any{"writes": map[string]any{"tuple_keys": openFGATuples()}, "authorization_model_id": f.model}
	if err := postJSON(ctx, hc, f.storeURL("/write"), write, nil); err != nil {
		return nil, fmt.Errorf("write tuples: %w", err)
	}
	return f, nil
}

func (f *openFGA) storeURL(path string) string { return f.url + "/stores/" + f.store + path }

func (f *openFGA) tuple(q question) tupleKey {
	return tupleKey{User: "user:" + q.user, Relation: "can_" + q.tool, Object: "tenant:" + q.tenant}
}

// checkBody is the body of POST /stores/{id}/check.
func (f *openFGA) checkBody(q question) []byte {
	return mustJSON(map[string]any{"tuple_key": f.tuple(q), "authorization_model_id": f.model})
}

// batchBody is the body of POST /stores/{id}/batch-check for qs.
func (f *openFGA) batchBody(qs []question) []byte {
	checks := make([]map[string]any, len(qs))
	for i, q := range qs {
		checks[i] = map[string]any{"tuple_key": f.tuple(q), "correlation_id": fmt.Sprint(i)}
	}
	return mustJSON(map[string]any{"checks": checks, "authorization_model_id": f.model})
}

// decide asks a single check.
func (f *openFGA) decide(ctx context.Context, hc *http.Client, q question) (bool, error) {
	var out struct {
		Allowed bool `json:"allowed"`
	}
	err := postRaw(ctx, hc, f.storeURL("/check"), f.checkBody(q), &out)
	return out.Allowed, err
}

// decideBatch asks a batch check and returns the answers in order.
func (f *openFGA) decideBatch(ctx context.Context, hc *http.Client, qs []question) ([]bool, error) {
	var out struct {
		Result map[string]struct {
			Allowed bool `json:"allowed"`
			Error   any  `json:"error"`
		} `json:"result"`
	}
	if err := postRaw(ctx, hc, f.storeURL("/batch-check"), f.batchBody(qs), &out); err != nil {
		return nil, err
	}
	answers := make([]bool, len(qs))
	for i := range qs {
		r, ok := out.Result[fmt.Sprint(i)]
		if !ok || r.Error != nil {
			return nil, fmt.Errorf("batch check %d: no answer (%v)", i, r.Error)
		}
		answers[i] = r.Allowed
	}
	return answers, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
