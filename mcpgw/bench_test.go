package mcpgw_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/examples"
	"github.com/gatehouse/gatehouse/mcpgw"
	"github.com/gatehouse/gatehouse/mcpgw/storeserver"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/sqlite"
)

// benchService is the example policy's service with extra policy tools.
func benchService(b *testing.B, extra []gatehouse.Tool) *service.Service {
	b.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "g.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	svc, err := service.Open(ctx, db, service.Config{})
	if err != nil {
		b.Fatal(err)
	}
	doc, err := policy.Parse(examples.AIAssistantPolicyFile, examples.AIAssistantPolicy())
	if err != nil {
		b.Fatal(err)
	}
	doc.Policy.Tools = append(doc.Policy.Tools, extra...)
	if _, err := svc.Apply(ctx, "bench", doc, false); err != nil {
		b.Fatal(err)
	}
	return svc
}

// serveUpstream serves srv over Streamable HTTP on loopback, as a real
// upstream is reached.
func serveUpstream(b *testing.B, srv *mcp.Server) string {
	b.Helper()
	get := func(*http.Request) *mcp.Server { return srv }
	stateful := mcp.NewStreamableHTTPHandler(get, nil)
	stateless := mcp.NewStreamableHTTPHandler(get, &mcp.StreamableHTTPOptions{Stateless: true})
	// As the gateway serves: 2026-07-28 statelessly, older protocols with
	// a session.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Protocol-Version") >= "2026-07-28" {
			stateless.ServeHTTP(w, r)
			return
		}
		stateful.ServeHTTP(w, r)
	}))
	b.Cleanup(ts.Close)
	return ts.URL
}

// serveGateway serves the gateway for upstreams on loopback; callers name
// themselves with X-Test-Subject, as in the tests.
func serveGateway(b *testing.B, svc *service.Service, upstreams []mcpgw.Upstream) string {
	b.Helper()
	cfg := mcpgw.DefaultConfig()
	cfg.Upstreams = upstreams
	gw, err := mcpgw.New(svc, cfg, mcpgw.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { gw.Close() })
	h := gw.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		subject, _ := gatehouse.ParseSubject(r.Header.Get("X-Test-Subject"))
		h.ServeHTTP(w, r.WithContext(gatehouse.NewContext(r.Context(), gatehouse.Caller{Subject: subject, Credential: gatehouse.CredentialToken})))
	}))
	b.Cleanup(ts.Close)
	return ts.URL
}

// benchClient connects to url at protocol version ("" is the newest) with
// header.
func benchClient(b *testing.B, url, version string, header map[string]string) *mcp.ClientSession {
	b.Helper()
	tr := &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: headers{h: header, next: http.DefaultTransport}}}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).Connect(context.Background(), tr,
		&mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close() })
	return cs
}

// quantiles reports the p50 and p99 of ds, in µs, as metrics named name.
func quantiles(b *testing.B, name string, ds []time.Duration) (p50, p99 float64) {
	slices.Sort(ds)
	at := func(q float64) float64 { return float64(ds[int(q*float64(len(ds)-1))].Nanoseconds()) / 1e3 }
	p50, p99 = at(0.50), at(0.99)
	b.ReportMetric(p50, name+"-p50-µs")
	b.ReportMetric(p99, name+"-p99-µs")
	return p50, p99
}

var benchProtocols = []struct{ name, version string }{{"2026-07-28", ""}, {"2025-11-25", "2025-11-25"}}

// BenchmarkToolsCall is the latency the gateway adds to a tools/call: the
// same call, in the same run, alternately straight to the example store
// and through the gateway in front of it, both over Streamable HTTP on
// loopback. lookup_order is an agent action (a reservation and its
// executed record in SQLite, and the tool.call audit record); store_stats
// is an unmapped tool decided by a permission alone.
//
//	go test -run '^$' -bench BenchmarkToolsCall -benchtime 2000x ./mcpgw/
func BenchmarkToolsCall(b *testing.B) {
	svc := benchService(b, nil)
	upstreamURL := serveUpstream(b, storeserver.New().Server)
	gatewayURL := serveGateway(b, svc, []mcpgw.Upstream{{Name: "store", URL: upstreamURL, Unmapped: "permission manage_ai_tools"}})
	olga := map[string]string{"X-Test-Subject": "user:olga@acme.example", "X-Tenant-ID": "acme-berlin"}
	for _, p := range benchProtocols {
		direct := benchClient(b, upstreamURL, p.version, nil)
		via := benchClient(b, gatewayURL, p.version, olga)
		for _, tool := range []string{"lookup_order", "store_stats"} {
			b.Run(fmt.Sprintf("protocol=%s/tool=%s", p.name, tool), func(b *testing.B) {
				params := &mcp.CallToolParams{Name: tool, Arguments: map[string]any{"order_id": "A-1"}}
				if tool == "store_stats" {
					params.Arguments = map[string]any{}
				}
				call := func(cs *mcp.ClientSession) time.Duration {
					start := time.Now()
					res, err := cs.CallTool(context.Background(), params)
					d := time.Since(start)
					if err != nil || res.IsError {
						b.Fatalf("tools/call %s = %+v, %v", tool, res, err)
					}
					return d
				}
				for range 50 { // warm connections and caches
					call(direct)
					call(via)
				}
				ds, gs := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for range b.N {
					ds = append(ds, call(direct))
					gs = append(gs, call(via))
				}
				b.StopTimer()
				d50, d99 := quantiles(b, "direct", ds)
				g50, g99 := quantiles(b, "gateway", gs)
				b.ReportMetric(g50-d50, "added-p50-µs")
				b.ReportMetric(g99-d99, "added-p99-µs")
			})
		}
	}
}

// BenchmarkToolsList200 is tools/list through the gateway for a caller
// shown all of an upstream's 200 tools, each a policy tool decided for the
// caller, beside the same list straight from the upstream.
//
//	go test -run '^$' -bench BenchmarkToolsList200 -benchtime 500x ./mcpgw/
func BenchmarkToolsList200(b *testing.B) {
	bulk := mcp.NewServer(&mcp.Implementation{Name: "bulk", Version: "1"}, nil)
	var extra []gatehouse.Tool
	for i := range 200 {
		name := fmt.Sprintf("bulk_%03d", i)
		bulk.AddTool(&mcp.Tool{Name: name, Description: "One of 200 tools.", InputSchema: map[string]any{"type": "object",
			"properties": map[string]any{"id": map[string]any{"type": "string"}}}},
			func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return &mcp.CallToolResult{}, nil
			})
		extra = append(extra, gatehouse.Tool{Name: name, Permission: "orders.lookup", Upstream: "bulk"})
	}
	svc := benchService(b, extra)
	upstreamURL := serveUpstream(b, bulk)
	gatewayURL := serveGateway(b, svc, []mcpgw.Upstream{{Name: "bulk", URL: upstreamURL}})
	olga := map[string]string{"X-Test-Subject": "user:olga@acme.example", "X-Tenant-ID": "acme-berlin"}
	for _, p := range benchProtocols {
		b.Run("protocol="+p.name, func(b *testing.B) {
			direct := benchClient(b, upstreamURL, p.version, nil)
			via := benchClient(b, gatewayURL, p.version, olga)
			list := func(cs *mcp.ClientSession) time.Duration {
				start := time.Now()
				res, err := cs.ListTools(context.Background(), nil)
				d := time.Since(start)
				if err != nil || len(res.Tools) == 0 {
					b.Fatalf("tools/list = %v", err)
				}
				return d
			}
			// Pages of the SDK's default size: all 200 in one page each way.
			if res, err := via.ListTools(context.Background(), nil); err != nil || len(res.Tools) != 200 {
				b.Fatalf("the gateway lists %d tools, want 200 (%v)", len(res.Tools), err)
			}
			for range 20 {
				list(direct)
				list(via)
			}
			ds, gs := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				ds = append(ds, list(direct))
				gs = append(gs, list(via))
			}
			b.StopTimer()
			quantiles(b, "direct", ds)
			quantiles(b, "gateway", gs)
		})
	}
}
