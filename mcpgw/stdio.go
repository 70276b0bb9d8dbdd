package mcpgw

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// StdioSession is one local MCP client served over a pair of streams
// (`gatehouse mcp stdio`): who it is, in which tenant and language.
type StdioSession struct {
	In  io.ReadCloser
	Out io.WriteCloser
	// Caller is the client's identity, from its credential; Tenant and
	// Lang are its tenant and the language of its messages.
	Caller gatehouse.Caller
	Tenant string
	Lang   string
	// Verify, when set, is asked before every request whether the
	// credential still holds: service.ErrBadAPIKey for a key revoked or
	// expired since, another error when it cannot say. Either refuses the
	// request, as the HTTP endpoint refuses it.
	Verify func(context.Context) error
}

// ServeStdio serves s, one session with the caller's tools, resources and
// prompts, kept current like an HTTP session's (Run), until the client
// closes its input or ctx ends.
func (g *Gateway) ServeStdio(ctx context.Context, s StdioSession) error {
	id := identity{caller: s.Caller, tenant: strings.TrimSpace(s.Tenant), lang: g.opts.Catalog.Match(s.Lang)}
	srv, v := g.newServer(ctx, id)
	if s.Verify != nil {
		srv.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
			return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
				if strings.HasPrefix(method, "notifications/") {
					return next(ctx, method, req)
				}
				if err := s.Verify(ctx); err != nil {
					g.opts.Logger.Warn("mcp gateway: stdio credential refused", "subject", id.caller.Subject.String(), "err", err)
					code, text := gatehouse.ErrorCode(err), g.opts.Catalog.Error(id.lang, err)
					if errors.Is(err, service.ErrBadAPIKey) {
						code, text = "unauthorized", g.opts.Catalog.Text(id.lang, "mcp.api_key_invalid", nil)
					}
					data, _ := json.Marshal(map[string]string{"code": code})
					return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest, Message: text + " [" + code + "]", Data: data}
				}
				return next(ctx, method, req)
			}
		})
	}
	g.track(srv, v)
	defer g.untrack(srv)
	return srv.Run(ctx, &mcp.IOTransport{Reader: s.In, Writer: s.Out})
}
