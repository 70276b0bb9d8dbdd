package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/gatehouse/gatehouse"
	gatehttp "github.com/gatehouse/gatehouse/http"
	"github.com/gatehouse/gatehouse/mcpgw"
	"github.com/gatehouse/gatehouse/mcpgw/storeserver"
	"github.com/gatehouse/gatehouse/service"
)

// mcpFlags are serve's MCP gateway flags.
func mcpFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.mcpConfig, "mcp-config", "", "serve the MCP gateway at /mcp in front of the upstreams of this file (YAML, see docs/mcp.md)")
}

// loadMCP starts the gateway of --mcp-config, if given, and sets cfg.MCP;
// the returned function stops it.
func (m *Main) loadMCP(ctx context.Context, cfg *gatehttp.Config, path string, transport mcpgw.Transport) (func(), error) {
	var gc mcpgw.Config
	switch {
	case path != "":
		var err error
		if gc, err = mcpgw.LoadConfig(path); err != nil {
			return nil, err
		}
	case transport != nil:
		gc = mcpgw.DefaultConfig()
		gc.Upstreams = demoUpstreams()
	default:
		return func() {}, nil
	}
	gw, err := mcpgw.New(m.svc, gc, mcpgw.Options{Logger: cfg.Logger, Catalog: m.catalog, Transport: transport})
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(ctx)
	go gw.Run(ctx)
	cfg.MCP = gw.Handler()
	return func() { stop(); gw.Close() }, nil
}

// demoStore serves the example store upstream in-process for the demo's
// gateway.
func demoStore() mcpgw.Transport { return storeserver.New().InProcess("store") }

// demoUpstreams is the demo's gateway configuration: the example store
// (served by demoStore), its resources shown to whoever may look up
// orders, its prompt to whoever may refund.
func demoUpstreams() []mcpgw.Upstream {
	return []mcpgw.Upstream{{Name: "store", URL: "http://127.0.0.1:1/in-process",
		Resources: "permission orders.lookup", Prompts: "permission payments.refund"}}
}

func mcpToolsFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.subject, "subject", "", "user:EMAIL or agent:ID")
	fs.StringVar(&o.tenant, "tenant", "", "tenant id")
	fs.StringVar(&o.mcpConfig, "mcp-config", "", "the gateway's upstreams (YAML, see docs/mcp.md); without it, the demo's example store")
	fs.BoolVar(&o.jsonOut, "json", false, "print as JSON")
}

func mcpStdioFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.tenant, "tenant", "", "the tenant the client works in")
	fs.StringVar(&o.mcpConfig, "mcp-config", "", "the gateway's upstreams (YAML, see docs/mcp.md); without it, the demo's example store")
}

// gateway opens the gateway of --mcp-config or, without it, the one in
// front of the demo's example store.
func (m *Main) gateway() (*mcpgw.Gateway, error) {
	gc := mcpgw.DefaultConfig()
	var transport mcpgw.Transport
	if m.opts.mcpConfig != "" {
		var err error
		if gc, err = mcpgw.LoadConfig(m.opts.mcpConfig); err != nil {
			return nil, err
		}
	} else {
		gc.Upstreams = demoUpstreams()
		transport = demoStore()
	}
	return mcpgw.New(m.svc, gc, mcpgw.Options{Logger: m.Logger, Catalog: m.catalog, Transport: transport})
}

// runMCPStdio serves the gateway over stdin and stdout to one local
// client (an IDE that starts its MCP servers as commands) as the subject
// of GATEHOUSE_API_KEY, verified through the service like an HTTP
// request's key, before the first request and before every one after:
// a key revoked meanwhile stops working. Logs go to stderr; stdout is the
// protocol's.
func runMCPStdio(ctx context.Context, m *Main) error {
	if m.Config.APIKey == "" {
		return usage("api_key_missing")
	}
	verify := func(ctx context.Context) (gatehouse.APIKey, error) {
		k, err := m.svc.VerifyAPIKey(ctx, m.Config.APIKey)
		if err != nil {
			return k, err
		}
		if !k.Allows(gatehouse.ScopeMCP) {
			return k, service.ErrBadAPIKey
		}
		return k, nil
	}
	k, err := verify(ctx)
	if errors.Is(err, service.ErrBadAPIKey) {
		return usage("api_key_invalid", "Scope", gatehouse.ScopeMCP)
	}
	if err != nil {
		return err
	}
	gw, err := m.gateway()
	if err != nil {
		return err
	}
	defer gw.Close()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go gw.Run(ctx)
	err = gw.ServeStdio(ctx, mcpgw.StdioSession{
		In: io.NopCloser(m.Stdin), Out: nopWriteCloser{m.Stdout},
		Caller: gatehouse.Caller{Subject: k.Subject, Credential: gatehouse.CredentialAPIKey, Scopes: k.Scopes},
		Tenant: m.opts.tenant, Lang: m.lang(),
		Verify: func(ctx context.Context) error { _, err := verify(ctx); return err },
	})
	if ctx.Err() != nil {
		// Interrupted, or the client went away: a normal end.
		return nil
	}
	return err
}

// nopWriteCloser leaves closing stdout to the process.
type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// runMCPTools prints what tools/list shows subject in tenant.
func runMCPTools(ctx context.Context, m *Main) error {
	o := m.opts
	if o.subject == "" {
		return usage("required", "Flag", "--subject")
	}
	subject, err := gatehouse.ParseSubject(o.subject)
	if err != nil {
		return usage("bad_value", "Flag", "--subject", "Detail", err)
	}
	gw, err := m.gateway()
	if err != nil {
		return err
	}
	defer gw.Close()
	caller := gatehouse.Operator
	caller.Subject = subject
	names, err := gw.ToolNames(ctx, caller, o.tenant)
	if err != nil {
		return err
	}
	if o.jsonOut {
		if names == nil {
			names = []string{}
		}
		return writeJSON(m, names)
	}
	for _, n := range names {
		fmt.Fprintln(m.Stdout, n)
	}
	if len(names) == 0 {
		fmt.Fprintf(m.Stdout, "(%s sees no tools in %q)\n", subject, o.tenant)
	}
	return nil
}
