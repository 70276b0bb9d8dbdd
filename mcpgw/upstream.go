package mcpgw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// upstream is one MCP server the gateway calls with its own identity,
// connected on first use and again after the connection fails. Its lists
// of tools, resources and prompts are cached until the server says they
// changed.
type upstream struct {
	cfg       Upstream
	logger    *slog.Logger
	transport func() mcp.Transport
	// onChange is called when the server says its tools changed.
	onChange func()

	mu      sync.Mutex
	session *mcp.ClientSession
	tools   []*mcp.Tool
	// items are the resources, resource templates and prompts, nil until
	// listed.
	items *upstreamItems
}

// upstreamItems are an upstream's resources, resource templates and
// prompts: those of the kinds its configuration can show.
type upstreamItems struct {
	resources []*mcp.Resource
	templates []*mcp.ResourceTemplate
	prompts   []*mcp.Prompt
}

// Transport, when set, connects to an upstream instead of its URL or
// command (tests, and an upstream served in-process by the demo).
type Transport func(name string) mcp.Transport

func newUpstream(cfg Upstream, logger *slog.Logger, override Transport, onChange func()) *upstream {
	u := &upstream{cfg: cfg, logger: logger, onChange: onChange}
	switch {
	case override != nil && override(cfg.Name) != nil:
		u.transport = func() mcp.Transport { return override(cfg.Name) }
	case cfg.URL != "":
		client := &http.Client{Transport: headerTransport{headers: cfg.Headers, next: http.DefaultTransport}}
		u.transport = func() mcp.Transport {
			return &mcp.StreamableClientTransport{Endpoint: cfg.URL, HTTPClient: client, MaxRetries: 1}
		}
	default:
		u.transport = func() mcp.Transport {
			cmd := exec.Command(cfg.Command, cfg.Args...)
			cmd.Env = commandEnv(os.Getenv, cfg.Env)
			cmd.Stderr = logWriter{logger: logger, upstream: cfg.Name}
			return &mcp.CommandTransport{Command: cmd}
		}
	}
	return u
}

// inheritedEnv are the variables of the gateway's environment a stdio
// upstream gets, as the MCP SDKs' clients pass them (the TypeScript SDK's
// getDefaultEnvironment): enough to find programs and a home directory.
var inheritedEnv = []string{"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "TMPDIR", "USER", "LANG", "TZ"}

// commandEnv is the environment of a stdio upstream: inheritedEnv from
// getenv, then the configured env. The rest of the gateway's environment
// (GATEHOUSE_JWT_SECRET, a database URL with its password) never reaches
// it, since an upstream may show its environment to whoever calls it.
func commandEnv(getenv func(string) string, env map[string]string) []string {
	var out []string
	for _, k := range inheritedEnv {
		if v := getenv(k); v != "" {
			out = append(out, k+"="+v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// headerTransport adds the gateway's own headers for an upstream; the
// client's token never reaches it.
type headerTransport struct {
	headers map[string]string
	next    http.RoundTripper
}

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.headers {
		r.Header.Set(k, v)
	}
	return t.next.RoundTrip(r)
}

// logWriter logs a stdio upstream's stderr.
type logWriter struct {
	logger   *slog.Logger
	upstream string
}

func (w logWriter) Write(p []byte) (int, error) {
	w.logger.Info("mcp upstream stderr", "upstream", w.upstream, "line", string(p))
	return len(p), nil
}

// connected returns the live session, connecting if there is none.
func (u *upstream) connected(ctx context.Context) (*mcp.ClientSession, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.session != nil {
		return u.session, nil
	}
	changed := func(tools bool) {
		u.mu.Lock()
		if tools {
			u.tools = nil
		} else {
			u.items = nil
		}
		u.mu.Unlock()
		if u.onChange != nil {
			u.onChange()
		}
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "gatehouse-mcp-gateway", Version: "1"}, &mcp.ClientOptions{
		ToolListChangedHandler:     func(context.Context, *mcp.ToolListChangedRequest) { changed(true) },
		ResourceListChangedHandler: func(context.Context, *mcp.ResourceListChangedRequest) { changed(false) },
		PromptListChangedHandler:   func(context.Context, *mcp.PromptListChangedRequest) { changed(false) },
	})
	cs, err := client.Connect(ctx, u.transport(), nil)
	if err != nil {
		return nil, fmt.Errorf("connect to upstream %s: %w", u.cfg.Name, err)
	}
	u.session = cs
	go func() {
		// A session that ends is replaced on the next use.
		_ = cs.Wait()
		u.mu.Lock()
		if u.session == cs {
			u.session, u.tools, u.items = nil, nil, nil
		}
		u.mu.Unlock()
	}()
	return cs, nil
}

// reset drops a session that failed, so that the next use reconnects.
func (u *upstream) reset(cs *mcp.ClientSession) {
	u.mu.Lock()
	if u.session == cs {
		u.session, u.tools, u.items = nil, nil, nil
	}
	u.mu.Unlock()
	cs.Close()
}

// listTools returns the upstream's tools, from the cache while the server
// has not said they changed.
func (u *upstream) listTools(ctx context.Context) ([]*mcp.Tool, error) {
	cs, err := u.connected(ctx)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	tools := u.tools
	u.mu.Unlock()
	if tools != nil {
		return tools, nil
	}
	tools = []*mcp.Tool{}
	for t, err := range cs.Tools(ctx, nil) {
		if err != nil {
			u.reset(cs)
			return nil, fmt.Errorf("list the tools of upstream %s: %w", u.cfg.Name, err)
		}
		tools = append(tools, t)
	}
	u.mu.Lock()
	if u.session == cs {
		u.tools = tools
	}
	u.mu.Unlock()
	return tools, nil
}

// listItems returns the upstream's resources, resource templates and
// prompts of the kinds its configuration can show and the server offers,
// from the cache while the server has not said they changed.
func (u *upstream) listItems(ctx context.Context) (*upstreamItems, error) {
	wantResources, wantPrompts := u.cfg.passesItems()
	if !wantResources && !wantPrompts {
		return &upstreamItems{}, nil
	}
	cs, err := u.connected(ctx)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	items := u.items
	u.mu.Unlock()
	if items != nil {
		return items, nil
	}
	items = &upstreamItems{}
	caps := &mcp.ServerCapabilities{}
	if r := cs.InitializeResult(); r != nil && r.Capabilities != nil {
		caps = r.Capabilities
	}
	fail := func(what string, err error) (*upstreamItems, error) {
		u.reset(cs)
		return nil, fmt.Errorf("list the %s of upstream %s: %w", what, u.cfg.Name, err)
	}
	if wantResources && caps.Resources != nil {
		for r, err := range cs.Resources(ctx, nil) {
			if err != nil {
				return fail("resources", err)
			}
			items.resources = append(items.resources, r)
		}
		for t, err := range cs.ResourceTemplates(ctx, nil) {
			if err != nil {
				return fail("resource templates", err)
			}
			items.templates = append(items.templates, t)
		}
	}
	if wantPrompts && caps.Prompts != nil {
		for p, err := range cs.Prompts(ctx, nil) {
			if err != nil {
				return fail("prompts", err)
			}
			items.prompts = append(items.prompts, p)
		}
	}
	u.mu.Lock()
	if u.session == cs {
		u.items = items
	}
	u.mu.Unlock()
	return items, nil
}

// readResource reads uri, bounded by timeout.
func (u *upstream) readResource(ctx context.Context, uri string, timeout time.Duration) (*mcp.ReadResourceResult, error) {
	cs, err := u.connected(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
	if err != nil {
		u.resetAfter(ctx, cs, err)
		return nil, fmt.Errorf("read %s on upstream %s: %w", uri, u.cfg.Name, err)
	}
	return res, nil
}

// getPrompt gets the prompt name with args, bounded by timeout.
func (u *upstream) getPrompt(ctx context.Context, name string, args map[string]string, timeout time.Duration) (*mcp.GetPromptResult, error) {
	cs, err := u.connected(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: name, Arguments: args})
	if err != nil {
		u.resetAfter(ctx, cs, err)
		return nil, fmt.Errorf("get prompt %s on upstream %s: %w", name, u.cfg.Name, err)
	}
	return res, nil
}

// resetAfter drops cs after a request failed with err, since the
// connection may be gone, unless the request only ran out of its time
// (ctx) or the server answered it with a JSON-RPC error.
func (u *upstream) resetAfter(ctx context.Context, cs *mcp.ClientSession, err error) {
	var answered *jsonrpc.Error
	if ctx.Err() == nil && !errors.As(err, &answered) {
		u.reset(cs)
	}
}

// call calls tool with args, bounded by timeout.
func (u *upstream) call(ctx context.Context, tool string, args json.RawMessage, timeout time.Duration) (*mcp.CallToolResult, error) {
	cs, err := u.connected(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		if ctx.Err() == nil {
			// Not our deadline: the connection may be gone.
			u.reset(cs)
		}
		return nil, fmt.Errorf("call %s on upstream %s: %w", tool, u.cfg.Name, err)
	}
	return res, nil
}

// close ends the session, if any.
func (u *upstream) close() {
	u.mu.Lock()
	cs := u.session
	u.session, u.tools, u.items = nil, nil, nil
	u.mu.Unlock()
	if cs != nil {
		cs.Close()
	}
}
