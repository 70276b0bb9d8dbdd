// Package tools has chat.Executors: Demo, deterministic synthetic data for
// the example policy's tools (seed 000's analysis tools, seed 004's order
// actions), HTTP, which POSTs each call to a configured URL, and Mux,
// which combines executors.
package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/chat"
)

// demoTool is one tool of Demo: its spec and a deterministic answer.
type demoTool struct {
	spec chat.ToolSpec
	run  func(args map[string]any) (any, error)
}

func schema(props ...string) json.RawMessage {
	p := map[string]any{}
	for _, name := range props {
		p[name] = map[string]string{"type": "string"}
	}
	b, _ := json.Marshal(map[string]any{"type": "object", "properties": p, "required": props})
	return b
}

// seed derives a stable number from s, so the same question gets the same
// synthetic answer on every run.
func seed(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

func str(args map[string]any, key string) (string, error) {
	v, ok := args[key]
	if !ok {
		return "", fmt.Errorf("the argument %s is required", key)
	}
	s := strings.TrimSpace(fmt.Sprint(v))
	if s == "" {
		return "", fmt.Errorf("the argument %s is empty", key)
	}
	return s, nil
}

var demoTools = []demoTool{
	{chat.ToolSpec{Name: "analyze_loan", Description: "Analyze a loan and score its risk.", Parameters: schema("loan_id")},
		func(a map[string]any) (any, error) {
			id, err := str(a, "loan_id")
			if err != nil {
				return nil, err
			}
			n := seed(id)
			return map[string]any{"loan_id": id, "score": 550 + n%300, "risk": []string{"low", "medium", "high"}[n%3],
				"debt_to_income": fmt.Sprintf("%d%%", 15+n%30)}, nil
		}},
	{chat.ToolSpec{Name: "detect_fraud", Description: "Check a customer's recent transactions for fraud.", Parameters: schema("customer_id")},
		func(a map[string]any) (any, error) {
			id, err := str(a, "customer_id")
			if err != nil {
				return nil, err
			}
			n := seed(id)
			return map[string]any{"customer_id": id, "suspicious_transactions": n % 4, "fraud_probability": fmt.Sprintf("0.%02d", n%100)}, nil
		}},
	{chat.ToolSpec{Name: "customer_insights", Description: "Profile a customer: segment, lifetime value, products.", Parameters: schema("customer_id")},
		func(a map[string]any) (any, error) {
			id, err := str(a, "customer_id")
			if err != nil {
				return nil, err
			}
			n := seed(id)
			return map[string]any{"customer_id": id, "segment": []string{"retail", "premium", "business"}[n%3],
				"lifetime_value_eur": 1000 + n%50000, "products": 1 + n%5}, nil
		}},
	{chat.ToolSpec{Name: "generate_report", Description: "Generate a report on a topic.", Parameters: schema("topic")},
		func(a map[string]any) (any, error) {
			topic, err := str(a, "topic")
			if err != nil {
				return nil, err
			}
			return map[string]any{"topic": topic, "pages": 2 + seed(topic)%10, "status": "ready"}, nil
		}},
	{chat.ToolSpec{Name: "advanced_data_query", Description: "Run an analytical query over accounts and transactions.", Parameters: schema("query")},
		func(a map[string]any) (any, error) {
			q, err := str(a, "query")
			if err != nil {
				return nil, err
			}
			return map[string]any{"query": q, "rows": seed(q) % 1000}, nil
		}},
	{chat.ToolSpec{Name: "lookup_order", Description: "Look up an order's status.", Parameters: schema("order_id")},
		func(a map[string]any) (any, error) {
			id, err := str(a, "order_id")
			if err != nil {
				return nil, err
			}
			return map[string]any{"order_id": id, "status": []string{"processing", "shipped", "delivered"}[seed(id)%3]}, nil
		}},
	{chat.ToolSpec{Name: "send_tracking", Description: "Send the customer the order's tracking link.", Parameters: schema("order_id")},
		orderDone("tracking_sent")},
	{chat.ToolSpec{Name: "update_address", Description: "Change an unshipped order's shipping address.", Parameters: schema("order_id", "address")},
		orderDone("address_updated")},
	{chat.ToolSpec{Name: "cancel_order", Description: "Cancel an order that has not shipped.", Parameters: schema("order_id")},
		orderDone("cancelled")},
	{chat.ToolSpec{Name: "initiate_return", Description: "Open a return and send a return label.", Parameters: schema("order_id")},
		orderDone("return_opened")},
	{chat.ToolSpec{Name: "process_refund", Description: "Refund an amount of an order to the customer.", Parameters: schema("order_id", "amount", "currency")},
		orderDone("refunded", "amount", "currency")},
	{chat.ToolSpec{Name: "apply_discount", Description: "Give a percentage discount on an order.", Parameters: schema("order_id", "percentage")},
		orderDone("discounted", "percentage")},
}

// orderDone is an order action that reports status and echoes keys.
func orderDone(status string, keys ...string) func(map[string]any) (any, error) {
	return func(a map[string]any) (any, error) {
		id, err := str(a, "order_id")
		if err != nil {
			return nil, err
		}
		out := map[string]any{"order_id": id, "status": status}
		for _, k := range keys {
			if out[k], err = str(a, k); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
}

// Demo runs the example policy's tools on synthetic data that depends only
// on the arguments.
type Demo struct{}

// Tools lists the demo tools.
func (Demo) Tools() []chat.ToolSpec {
	out := make([]chat.ToolSpec, len(demoTools))
	for i, t := range demoTools {
		out[i] = t.spec
	}
	return out
}

// Execute answers a call with JSON.
func (Demo) Execute(ctx context.Context, c chat.Call) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	i := slices.IndexFunc(demoTools, func(t demoTool) bool { return t.spec.Name == c.Tool })
	if i < 0 {
		return "", gatehouse.NotFoundf("no demo tool %q", c.Tool)
	}
	args := map[string]any{}
	if len(c.Arguments) > 0 {
		if err := json.Unmarshal(c.Arguments, &args); err != nil {
			return "", gatehouse.Invalidf("%s: arguments: %v", c.Tool, err)
		}
	}
	v, err := demoTools[i].run(args)
	if err != nil {
		return "", gatehouse.Invalidf("%s: %v", c.Tool, err)
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// HTTP executes its tools by POSTing each call, as a chat.Call in JSON, to
// URL with the gateway's own headers; a 2xx answer's body is the result.
type HTTP struct {
	URL     string
	Headers map[string]string
	Specs   []chat.ToolSpec
	// Timeout bounds a call (default 30 s); Client defaults to one with it.
	Timeout time.Duration
	Client  *http.Client
	// MaxResultBytes bounds an answer (default 1 MiB).
	MaxResultBytes int64
}

// NewHTTP checks an HTTP executor's configuration.
func NewHTTP(h HTTP) (*HTTP, error) {
	u, err := url.Parse(h.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, gatehouse.Invalidf("chat tools: url %q: want an http or https URL", h.URL)
	}
	if len(h.Specs) == 0 {
		return nil, gatehouse.Invalidf("chat tools: %s: no tools", h.URL)
	}
	if h.Timeout <= 0 {
		h.Timeout = 30 * time.Second
	}
	if h.Client == nil {
		h.Client = &http.Client{Timeout: h.Timeout}
	}
	if h.MaxResultBytes <= 0 {
		h.MaxResultBytes = 1 << 20
	}
	return &h, nil
}

// Tools lists the configured tools.
func (h *HTTP) Tools() []chat.ToolSpec { return h.Specs }

// Execute POSTs the call.
func (h *HTTP) Execute(ctx context.Context, c chat.Call) (string, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range h.Headers {
		req.Header.Set(k, v)
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		return "", fmt.Errorf("tool %s: %w", c.Tool, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, h.MaxResultBytes+1))
	if err != nil {
		return "", fmt.Errorf("tool %s: read the answer: %w", c.Tool, err)
	}
	if int64(len(out)) > h.MaxResultBytes {
		return "", fmt.Errorf("tool %s: the answer is larger than %d bytes", c.Tool, h.MaxResultBytes)
	}
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("tool %s: %s answered %s", c.Tool, h.URL, resp.Status)
	}
	return string(out), nil
}

// Mux runs each tool with the first executor that has it.
type Mux []chat.Executor

// Tools lists every executor's tools, the first of each name.
func (m Mux) Tools() []chat.ToolSpec {
	var out []chat.ToolSpec
	seen := map[string]bool{}
	for _, x := range m {
		for _, t := range x.Tools() {
			if !seen[t.Name] {
				seen[t.Name] = true
				out = append(out, t)
			}
		}
	}
	return out
}

// Execute runs c with the executor that has its tool.
func (m Mux) Execute(ctx context.Context, c chat.Call) (string, error) {
	for _, x := range m {
		for _, t := range x.Tools() {
			if t.Name == c.Tool {
				return x.Execute(ctx, c)
			}
		}
	}
	return "", errors.New("no executor runs tool " + c.Tool)
}
