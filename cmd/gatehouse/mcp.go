package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/gatehouse/gatehouse"
	gatehttp "github.com/gatehouse/gatehouse/http"
	"github.com/gatehouse/gatehouse/mcpgw"
	"github.com/gatehouse/gatehouse/mcpgw/storeserver"
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
		gc.Upstreams = []mcpgw.Upstream{{Name: "store", URL: "http://127.0.0.1:1/in-process"}}
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

func mcpToolsFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.subject, "subject", "", "user:EMAIL or agent:ID")
	fs.StringVar(&o.tenant, "tenant", "", "tenant id")
	fs.StringVar(&o.mcpConfig, "mcp-config", "", "the gateway's upstreams (YAML, see docs/mcp.md); without it, the demo's example store")
	fs.BoolVar(&o.jsonOut, "json", false, "print as JSON")
}

// runMCPTools prints what tools/list shows subject in tenant.
func runMCPTools(ctx context.Context, m *Main) error {
	o := m.opts
	if o.subject == "" {
		return usageErrorf("--subject is required")
	}
	subject, err := gatehouse.ParseSubject(o.subject)
	if err != nil {
		return usageErrorf("--subject: %v", err)
	}
	gc := mcpgw.DefaultConfig()
	var transport mcpgw.Transport
	if o.mcpConfig != "" {
		if gc, err = mcpgw.LoadConfig(o.mcpConfig); err != nil {
			return err
		}
	} else {
		gc.Upstreams = []mcpgw.Upstream{{Name: "store", URL: "http://127.0.0.1:1/in-process"}}
		transport = demoStore()
	}
	gw, err := mcpgw.New(m.svc, gc, mcpgw.Options{Catalog: m.catalog, Transport: transport})
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
