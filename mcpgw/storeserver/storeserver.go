// Package storeserver is a small example MCP server: the order and payment
// tools of seed 004's store (lookup_order, process_refund, apply_discount,
// …) and one tool no policy maps (store_stats), a resource
// (store://policies/returns), two resource templates (store://orders/{id},
// store://customers/{id}) and a prompt (refund_reply). It stands behind
// the MCP gateway in the tests and the demo; its answers are made up, and
// it counts the calls, reads and gets it answers, so that a test can see
// that a denied one never reached it.
package storeserver

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Server is the example store's MCP server and its call counts.
type Server struct {
	*mcp.Server
	mu    sync.Mutex
	calls map[string]int
	// delay makes every call take this long (timeouts); fail makes calls
	// of these tools an isError result.
	delay time.Duration
	fail  map[string]bool
}

type orderArgs struct {
	OrderID string `json:"order_id" jsonschema:"the order's id"`
}

type refundArgs struct {
	OrderID  string `json:"order_id" jsonschema:"the order's id"`
	Amount   string `json:"amount" jsonschema:"the amount to refund, a decimal string such as 20.00"`
	Currency string `json:"currency" jsonschema:"ISO 4217 currency code such as EUR"`
}

type discountArgs struct {
	OrderID    string `json:"order_id" jsonschema:"the order's id"`
	Percentage string `json:"percentage" jsonschema:"the discount in percent, such as 10"`
}

type addressArgs struct {
	OrderID string `json:"order_id" jsonschema:"the order's id"`
	Address string `json:"address" jsonschema:"the new shipping address"`
}

// New returns the example store server.
func New() *Server {
	s := &Server{Server: mcp.NewServer(&mcp.Implementation{Name: "example-store", Version: "1"}, nil), calls: map[string]int{}}
	addTool(s, "lookup_order", "Look up an order's status.", func(a orderArgs) string {
		return fmt.Sprintf("Order %s: shipped on 2026-11-28, arriving 2026-12-04.", a.OrderID)
	})
	addTool(s, "send_tracking", "Send the customer the order's tracking link.", func(a orderArgs) string {
		return fmt.Sprintf("Tracking link for order %s sent.", a.OrderID)
	})
	addTool(s, "update_address", "Change where an unshipped order goes.", func(a addressArgs) string {
		return fmt.Sprintf("Order %s now ships to %s.", a.OrderID, a.Address)
	})
	addTool(s, "cancel_order", "Cancel an order that has not shipped.", func(a orderArgs) string {
		return fmt.Sprintf("Order %s cancelled.", a.OrderID)
	})
	addTool(s, "initiate_return", "Open a return and send a return label.", func(a orderArgs) string {
		return fmt.Sprintf("Return opened for order %s.", a.OrderID)
	})
	addTool(s, "process_refund", "Refund money to the customer's payment method.", func(a refundArgs) string {
		return fmt.Sprintf("Refunded %s %s for order %s.", a.Amount, a.Currency, a.OrderID)
	})
	addTool(s, "apply_discount", "Give the customer a discount on an order.", func(a discountArgs) string {
		return fmt.Sprintf("Applied %s%% off order %s.", a.Percentage, a.OrderID)
	})
	addTool(s, "store_stats", "The store's order statistics (no policy maps it).", func(struct{}) string {
		return "42 orders today."
	})
	s.AddResource(&mcp.Resource{URI: "store://policies/returns", Name: "returns-policy", Title: "Returns policy",
		MIMEType: "text/plain"}, s.read(func(string) string { return "Returns are accepted within 30 days of delivery." }))
	s.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "store://orders/{order_id}", Name: "order", Title: "An order",
		MIMEType: "text/plain"}, s.read(func(uri string) string { return "Order " + strings.TrimPrefix(uri, "store://orders/") + ": shipped." }))
	s.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "store://customers/{customer_id}", Name: "customer", Title: "A customer",
		MIMEType: "text/plain"}, s.read(func(uri string) string {
		return "Customer " + strings.TrimPrefix(uri, "store://customers/") + ": 3 orders."
	}))
	s.AddPrompt(&mcp.Prompt{Name: "refund_reply", Title: "Refund reply", Description: "A reply telling the customer about a refund.",
		Arguments: []*mcp.PromptArgument{{Name: "order_id", Required: true}}},
		func(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			s.count("prompt " + req.Params.Name)
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{
				Text: "Write to the customer that order " + req.Params.Arguments["order_id"] + " is refunded."}}}}, nil
		})
	return s
}

// read answers resources/read with text for the URI, counting the read.
func (s *Server) read(text func(uri string) string) mcp.ResourceHandler {
	return func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		uri := req.Params.URI
		s.count("read " + uri)
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: "text/plain", Text: text(uri)}}}, nil
	}
}

func (s *Server) count(key string) {
	s.mu.Lock()
	s.calls[key]++
	s.mu.Unlock()
}

// addTool adds a tool whose input schema comes from In and whose answer
// is text.
func addTool[In any](s *Server, name, description string, text func(In) string) {
	mcp.AddTool(s.Server, &mcp.Tool{Name: name, Description: description},
		func(ctx context.Context, _ *mcp.CallToolRequest, in In) (*mcp.CallToolResult, any, error) {
			return s.answer(ctx, name, text(in)), nil, nil
		})
}

// answer counts a call of tool and returns text, after Delay.
func (s *Server) answer(ctx context.Context, tool, text string) *mcp.CallToolResult {
	s.mu.Lock()
	s.calls[tool]++
	delay, fail := s.delay, s.fail[tool]
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
	return &mcp.CallToolResult{IsError: fail, Content: []mcp.Content{&mcp.TextContent{Text: text}}}
}

// Calls returns how often tool was called; "read URI" and "prompt NAME"
// count resources/read and prompts/get.
func (s *Server) Calls(tool string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[tool]
}

// SetDelay makes every call take d.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// SetFail makes calls of tool fail (isError) or succeed again.
func (s *Server) SetFail(tool string, fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail == nil {
		s.fail = map[string]bool{}
	}
	s.fail[tool] = fail
}

// InProcess returns a connector for the gateway's Options.Transport that
// serves upstream name from s in-process; other names are not its.
func (s *Server) InProcess(name string) func(string) mcp.Transport {
	return func(upstream string) mcp.Transport {
		if upstream != name {
			return nil
		}
		server, client := mcp.NewInMemoryTransports()
		if _, err := s.Connect(context.Background(), server, nil); err != nil {
			return nil
		}
		return client
	}
}
