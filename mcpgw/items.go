package mcpgw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/gatehouse/gatehouse"
)

// exposedResource is an upstream resource or resource template the
// gateway shows, and the permission that decides it.
type exposedResource struct {
	up         *upstream
	resource   *mcp.Resource         // or
	template   *mcp.ResourceTemplate // one of them
	permission string
}

// key is the resource's URI or the template's URI template.
func (r exposedResource) key() string {
	if r.template != nil {
		return r.template.URITemplate
	}
	return r.resource.URI
}

// exposedPrompt is an upstream prompt the gateway shows as name.
type exposedPrompt struct {
	name       string
	up         *upstream
	def        *mcp.Prompt
	permission string
}

// itemCatalog is every resource, resource template and prompt the gateway
// can show: those of each upstream whose configuration names a permission
// for them (Upstream.Resources, Prompts and their items). A URI or URI
// template two upstreams both offer is the first's; a prompt name that is
// taken is shown as upstream.prompt. An upstream that cannot be reached
// shows nothing and is logged.
func (g *Gateway) itemCatalog(ctx context.Context) (resources, templates []exposedResource, prompts []exposedPrompt) {
	seen := map[string]bool{}
	taken := map[string]bool{}
	for _, name := range g.names {
		up := g.upstreams[name]
		items, err := up.listItems(ctx)
		if err != nil {
			g.opts.Logger.Warn("mcp gateway: upstream unavailable", "upstream", name, "err", err)
			continue
		}
		add := func(out *[]exposedResource, r exposedResource) {
			key := r.key()
			if r.permission = up.cfg.resourcePermission(key); r.permission == "" {
				return
			}
			if seen[key] {
				g.opts.Logger.Warn("mcp gateway: a resource two upstreams offer is the first's", "uri", key, "upstream", name)
				return
			}
			seen[key] = true
			*out = append(*out, r)
		}
		for _, r := range items.resources {
			add(&resources, exposedResource{up: up, resource: r})
		}
		for _, t := range items.templates {
			add(&templates, exposedResource{up: up, template: t})
		}
		for _, p := range items.prompts {
			perm := up.cfg.promptPermission(p.Name)
			if perm == "" {
				continue
			}
			shown := p.Name
			if taken[shown] {
				shown = name + "." + p.Name
			}
			taken[shown] = true
			prompts = append(prompts, exposedPrompt{name: shown, up: up, def: p, permission: perm})
		}
	}
	return resources, templates, prompts
}

// installItems adds to srv the resources, resource templates and prompts
// id may see that it does not list yet (have), removes those it may no
// longer see, and returns what it lists now. permits answers whether id
// holds a permission.
func (g *Gateway) installItems(ctx context.Context, srv *mcp.Server, id identity, have listed, permits func(string) bool) listed {
	resources, templates, prompts := g.itemCatalog(ctx)
	var now listed
	for _, r := range resources {
		if !permits(r.permission) {
			continue
		}
		now.resources = append(now.resources, r.key())
		if !slices.Contains(have.resources, r.key()) {
			def := *r.resource
			g.guardAdd("resource", r.key(), func() { srv.AddResource(&def, g.readHandler(id, r)) })
		}
	}
	for _, t := range templates {
		if !permits(t.permission) {
			continue
		}
		now.templates = append(now.templates, t.key())
		if !slices.Contains(have.templates, t.key()) {
			def := *t.template
			g.guardAdd("resource template", t.key(), func() { srv.AddResourceTemplate(&def, g.readHandler(id, t)) })
		}
	}
	for _, p := range prompts {
		if !permits(p.permission) {
			continue
		}
		now.prompts = append(now.prompts, p.name)
		if !slices.Contains(have.prompts, p.name) {
			def := *p.def
			def.Name = p.name
			srv.AddPrompt(&def, g.promptHandler(id, p))
		}
	}
	if gone := missing(have.resources, now.resources); len(gone) > 0 {
		srv.RemoveResources(gone...)
	}
	if gone := missing(have.templates, now.templates); len(gone) > 0 {
		srv.RemoveResourceTemplates(gone...)
	}
	if gone := missing(have.prompts, now.prompts); len(gone) > 0 {
		srv.RemovePrompts(gone...)
	}
	return now
}

// missing is what of had is not in now.
func missing(had, now []string) []string {
	var out []string
	for _, k := range had {
		if !slices.Contains(now, k) {
			out = append(out, k)
		}
	}
	return out
}

// guardAdd runs add, which the SDK makes panic for a URI or URI template
// it cannot parse or a tool's input schema that is not an object: such an
// upstream item is left out and logged.
func (g *Gateway) guardAdd(what, key string, add func()) {
	defer func() {
		if p := recover(); p != nil {
			g.opts.Logger.Warn("mcp gateway: an upstream "+what+" is not valid", "name", key, "err", p)
		}
	}()
	add()
}

// readHandler reads r's URIs from its upstream for id, decided again at
// read time: a permission revoked since the list was built is refused.
func (g *Gateway) readHandler(id identity, r exposedResource) mcp.ResourceHandler {
	return func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		uri := req.Params.URI
		if a, err := g.decideItem(ctx, id, r.permission); err != nil || !a.Allowed {
			return nil, g.refusal(id, a, err, mcp.CodeResourceNotFound, map[string]any{"uri": uri})
		}
		res, err := r.up.readResource(ctx, uri, g.cfg.CallTimeout)
		if err != nil {
			return nil, g.upstreamError(id, err, uri)
		}
		return res, nil
	}
}

// promptHandler gets p from its upstream for id, decided again at get
// time.
func (g *Gateway) promptHandler(id identity, p exposedPrompt) mcp.PromptHandler {
	return func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		if a, err := g.decideItem(ctx, id, p.permission); err != nil || !a.Allowed {
			return nil, g.refusal(id, a, err, jsonrpc.CodeInvalidParams, map[string]any{"prompt": p.name})
		}
		res, err := p.up.getPrompt(ctx, p.def.Name, req.Params.Arguments, g.cfg.CallTimeout)
		if err != nil {
			return nil, g.upstreamError(id, err, p.name)
		}
		return res, nil
	}
}

// decideItem asks the service whether id may read a resource or get a
// prompt that permission guards.
func (g *Gateway) decideItem(ctx context.Context, id identity, permission string) (gatehouse.Answer, error) {
	return g.svc.Evaluate(ctx, id.caller, gatehouse.Question{
		Request: gatehouse.Request{Subject: id.caller.Subject, Tenant: id.tenant, Permission: permission},
		Lang:    id.lang, Surface: "mcp"})
}

// refusal is the JSON-RPC error of a denied read or get: code, the
// localized message with the reason code, and the reason in its data
// beside fields.
func (g *Gateway) refusal(id identity, a gatehouse.Answer, err error, code int64, fields map[string]any) error {
	reason, text := a.Reason, a.Message
	if err != nil {
		reason = gatehouse.ReasonInternalError
		if errors.Is(err, gatehouse.ErrInvalid) || errors.Is(err, gatehouse.ErrNotFound) {
			reason = gatehouse.ReasonInvalidRequest
		}
		text = g.opts.Catalog.Error(id.lang, err)
	}
	fields["reason"] = string(reason)
	data, _ := json.Marshal(fields)
	return &jsonrpc.Error{Code: code, Message: fmt.Sprintf("%s [%s]", text, reason), Data: data}
}

// upstreamError is what the client gets when the upstream could not read
// or get item: the upstream's own JSON-RPC error (such as an unknown URI),
// or a localized internal error for one that failed or timed out.
func (g *Gateway) upstreamError(id identity, err error, item string) error {
	var answered *jsonrpc.Error
	if errors.As(err, &answered) {
		return answered
	}
	g.opts.Logger.Warn("mcp gateway: upstream request failed", "item", item, "err", err)
	data, _ := json.Marshal(map[string]string{"reason": string(gatehouse.ReasonInternalError)})
	return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Data: data, Message: g.opts.Catalog.Text(id.lang, "mcp.upstream_item_failed",
		map[string]string{"Item": item}) + " [" + string(gatehouse.ReasonInternalError) + "]"}
}
