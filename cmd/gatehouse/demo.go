package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/examples"
	gatehttp "github.com/gatehouse/gatehouse/http"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/web"
)

// demoTokenTTL is how long the demo's bearer tokens stay valid.
const demoTokenTTL = 24 * time.Hour

// demoUsers get a token each; Var is the shell variable that holds it, and
// Tenant the tenant the web UI's sign-in page starts them in.
var demoUsers = []struct{ Var, Email, Who, Tenant string }{
	{"SARA", "sara@acme.example", "supervisor at ACME (loan, fraud and customer insight tools in acme and its stores)", "acme"},
	{"CARL", "carl@acme.example", "customer service at the ACME Berlin store", "acme-berlin"},
	{"OLGA", "olga@acme.example", "operations at ACME: store support, refunds, AI tool administration", "acme"},
	{"GINA", "gina@globex.example", "supervisor at Globex Bank, on the free plan", "globex"},
	{"GUS", "gus@example.org", "guest: no access to the AI assistant", "general"},
	{"ADMIN", "admin@example.com", "superuser", "acme"},
}

// demoAgents get a token each too; they are not offered on the web UI's
// sign-in page, which is for people.
var demoAgents = []struct{ Var, ID, Who string }{
	{"BOT", "support-bot", "the store support assistant, acting for customers in the ACME stores"},
}

// demoCall is one request the demo prints as a curl command.
type demoCall struct {
	Title  string
	Path   string // may name $ACTION, the id an earlier call captured
	Token  string // the shell variable of the bearer token; "" sends none
	Header string // one extra header, "Name: value"
	// Body, when set, is POSTed as JSON; without a body the call is a GET
	// unless Post is set.
	Body string
	Post bool
	// Capture, when set, is the shell variable the answer's action_id is
	// assigned to.
	Capture string
}

var demoCalls = []demoCall{
	{Title: "AuthZEN evaluation, allowed: Sara may use loan analysis in tenant acme",
		Path: "/access/v1/evaluation", Token: "SARA",
		Body: `{"subject":{"type":"user","id":"sara@acme.example"},"action":{"name":"analyze_loan"},"resource":{"type":"tenant","id":"acme"}}`},
	{Title: `AuthZEN evaluation, denied (still HTTP 200): Carl has no loan analysis; the reason is in "context"`,
		Path: "/access/v1/evaluation", Token: "CARL",
		Body: `{"subject":{"type":"user","id":"carl@acme.example"},"action":{"name":"analyze_loan"},"resource":{"type":"tenant","id":"acme-berlin"}}`},
	{Title: "AuthZEN batch for Gina: allowed, plan_required (upgrade to pro), tenant_not_visible",
		Path: "/access/v1/evaluations", Token: "GINA",
		Body: `{"subject":{"type":"user","id":"gina@globex.example"},"resource":{"type":"tenant","id":"globex"},"evaluations":[{"action":{"name":"analyze_loan"}},{"action":{"name":"detect_fraud"}},{"action":{"name":"analyze_loan"},"resource":{"type":"tenant","id":"acme"}}]}`},
	{Title: "An agent acting for a user: the support bot may refund for Carl only if Carl may (he may not)",
		Path: "/access/v1/evaluation", Token: "ADMIN",
		Body: `{"subject":{"type":"agent","id":"support-bot","properties":{"on_behalf_of":"user:carl@acme.example"}},"action":{"name":"process_refund"},"resource":{"type":"tenant","id":"acme-berlin"}}`},
	{Title: "Guardrails over AuthZEN: a 5,000 EUR refund for Olga is over the store's 50.00 EUR limit (limit_exceeded, with the figures)",
		Path: "/access/v1/evaluation", Token: "ADMIN",
		Body: `{"subject":{"type":"agent","id":"support-bot","properties":{"on_behalf_of":"user:olga@acme.example"}},"action":{"name":"process_refund"},"resource":{"type":"tenant","id":"acme-berlin"},"context":{"amount":"5000.00","currency":"EUR"}}`},
	{Title: "A 20 EUR refund is within the limits but needs a human: confirmation_required, and where to create the confirmation",
		Path: "/access/v1/evaluation", Token: "ADMIN",
		Body: `{"subject":{"type":"agent","id":"support-bot","properties":{"on_behalf_of":"user:olga@acme.example"}},"action":{"name":"process_refund"},"resource":{"type":"tenant","id":"acme-berlin"},"context":{"amount":"20.00","currency":"EUR"}}`},
	{Title: "AuthZEN resource search: the tenants where Sara may use loan analysis",
		Path: "/access/v1/search/resource", Token: "SARA",
		Body: `{"subject":{"type":"user","id":"sara@acme.example"},"action":{"name":"analyze_loan"},"resource":{"type":"tenant"}}`},
	{Title: "AuthZEN action search: everything Carl may do in his store",
		Path: "/access/v1/search/action", Token: "CARL",
		Body: `{"subject":{"type":"user","id":"carl@acme.example"},"resource":{"type":"tenant","id":"acme-berlin"}}`},
	{Title: "Everything Sara may do in acme: permissions, locked features and the frontend's tool flags",
		Path: "/api/v1/me/effective?tenant=acme", Token: "SARA"},
	{Title: "Native check with the path that decided it, in German",
		Path: "/api/v1/explain", Token: "GINA", Header: "Accept-Language: de",
		Body: `{"tool":"detect_fraud","tenant":"globex"}`},
	{Title: "Seed 004: each agent action in the ACME Berlin store, whether it is enabled, needs confirmation, and where that comes from",
		Path: "/api/v1/permissions", Token: "ADMIN", Header: "X-Tenant-ID: acme-berlin"},
	{Title: "The AuthZEN metadata document (no token needed)",
		Path: "/.well-known/authzen-configuration"},
	{Title: "The whole policy as YAML (administrators only)",
		Path: "/api/v1/policy", Token: "ADMIN"},
}

// demoAction is the walkthrough of one agent action from request to audit
// (seed 004): the bot asks to refund 20 EUR for Olga, the refund waits
// for her, she confirms, the bot reports it executed, the audit shows it.
var demoAction = []demoCall{
	{Title: "The support bot asks to refund 20 EUR to Olga in the Berlin store: allowed, pending her confirmation (the id goes to $ACTION)",
		Path: "/api/v1/actions/authorize", Token: "BOT", Header: "X-Tenant-ID: acme-berlin", Capture: "ACTION",
		Body: `{"on_behalf_of":"user:olga@acme.example","tool":"process_refund","args":{"amount":"20.00","currency":"EUR"}}`},
	{Title: "Olga sees the refund waiting for her (status pending)", Path: "/api/v1/actions/$ACTION", Token: "OLGA"},
	{Title: "Olga confirms it (status confirmed)", Path: "/api/v1/actions/$ACTION/confirm", Token: "OLGA", Post: true},
	{Title: "The bot carries the refund out and records it (status executed)", Path: "/api/v1/actions/$ACTION/executed", Token: "BOT", Post: true},
	{Title: "The audit trail holds each step: action.authorize by the bot, action.confirmed by Olga, action.executed by the bot",
		Path: "/api/v1/audit?target=action/$ACTION", Token: "ADMIN"},
}

func demoFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.dir, "dir", "demo", "directory of the demo database (created if missing)")
	fs.StringVar(&o.addr, "addr", defaultAddr, "address to listen on")
	fs.DurationVar(&o.reloadEvery, "reload-interval", 2*time.Second, "how often to pick up policy changes made by other processes")
	fs.BoolVar(&o.reset, "reset", false, "start from a fresh database: delete the demo database (and its -wal and -shm files) first")
	fs.BoolVar(&o.tls, "tls", false, "serve HTTPS with a self-signed certificate written to --dir")
	fs.BoolVar(&o.decisionLog, "decision-log", true, "record every decision in the audit trail (see gatehouse audit list)")
	webFlags(fs, o)
}

// runDemo applies the example policy to a SQLite database in --dir, mints
// tokens for the demo users with a fresh secret, serves, and prints what to
// try until interrupted.
func runDemo(ctx context.Context, m *Main) error {
	if err := os.MkdirAll(m.opts.dir, 0o755); err != nil {
		return usage("bad_value", "Flag", "--dir", "Detail", err)
	}
	m.Config.DB = filepath.Join(m.opts.dir, "gatehouse.db")
	if m.opts.reset {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(m.Config.DB + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("--reset: %w", err)
			}
		}
	}
	if err := m.open(ctx); err != nil {
		return err
	}
	doc, err := policy.Parse(examples.AIAssistantPolicyFile, examples.AIAssistantPolicy())
	if err != nil {
		return err
	}
	res, err := m.svc.Apply(ctx, m.Config.Actor, doc, false)
	if err != nil {
		return err
	}
	cfg := m.httpConfig()
	// A fresh secret per run: tokens from an earlier run stop working.
	cfg.JWTSecret = []byte(rand.Text() + rand.Text())
	tokens := make(map[string]string, len(demoUsers)+len(demoAgents))
	signIn := make([]web.DemoUser, 0, len(demoUsers))
	for _, u := range demoUsers {
		if tokens[u.Var], err = gatehttp.IssueToken(cfg, "user:"+u.Email, demoTokenTTL); err != nil {
			return err
		}
		signIn = append(signIn, web.DemoUser{Label: u.Who, Subject: "user:" + u.Email, Tenant: u.Tenant, Token: tokens[u.Var]})
	}
	for _, a := range demoAgents {
		if tokens[a.Var], err = gatehttp.IssueToken(cfg, "agent:"+a.ID, demoTokenTTL); err != nil {
			return err
		}
	}
	if err := m.loadWeb(&cfg, signIn); err != nil {
		return err
	}
	// The MCP gateway at /mcp, in front of the example store served in-process.
	stopMCP, err := m.loadMCP(ctx, &cfg, "", demoStore())
	if err != nil {
		return err
	}
	defer stopMCP()
	// The chat at /ws with the scripted model and the demo tools.
	stopChat, err := m.loadChat(&cfg, "scripted", "", "", "")
	if err != nil {
		return err
	}
	defer stopChat()
	cacert := ""
	if m.opts.tls {
		cfg.TLSCertFile, cfg.TLSKeyFile = filepath.Join(m.opts.dir, "cert.pem"), filepath.Join(m.opts.dir, "key.pem")
		host, _, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return usage("value_error", "Flag", "--addr", "Value", cfg.Addr, "Detail", err)
		}
		if err := gatehttp.WriteSelfSignedCert(cfg.TLSCertFile, cfg.TLSKeyFile, []string{host, "localhost", "127.0.0.1"}, demoTokenTTL); err != nil {
			return err
		}
		cacert = cfg.TLSCertFile
	}
	return m.serve(ctx, cfg, func(url string) {
		printDemo(m.Stdout, url, m.Config.dbPath(), cacert, res.Version, tokens)
	})
}

func printDemo(w io.Writer, url, db, cacert string, version int64, tokens map[string]string) {
	fmt.Fprintf(w, "Gatehouse demo: %s applied to %s (policy version %d)\n\n", examples.AIAssistantPolicyFile, db, version)
	fmt.Fprintf(w, "  web UI     %s/ (sign in as any demo user below; see docs/web.md)\n", url)
	fmt.Fprintf(w, "  server     %s\n  metadata   %s/.well-known/authzen-configuration\n  health     %s/healthz, %s/readyz\n", url, url, url, url)
	fmt.Fprintf(w, "  MCP        %s/mcp (header X-Tenant-ID: acme-berlin; the example store behind it, see docs/mcp.md)\n", url)
	fmt.Fprintf(w, "  chat       %s/ws (a WebSocket; try: go run ./examples/chatclient -url %s -token \"$OLGA\"; see docs/chat.md)\n\n", wsURL(url), url)
	fmt.Fprintf(w, "Bearer tokens for every demo subject, valid for %.0f hours (paste into a shell):\n\n", demoTokenTTL.Hours())
	for _, u := range demoUsers {
		fmt.Fprintf(w, "# %s: %s\nexport %s='%s'\n", u.Email, u.Who, u.Var, tokens[u.Var])
	}
	for _, a := range demoAgents {
		fmt.Fprintf(w, "# agent %s: %s\nexport %s='%s'\n", a.ID, a.Who, a.Var, tokens[a.Var])
	}
	fmt.Fprintln(w, "\nThen try:")
	for i, c := range demoCalls {
		fmt.Fprintf(w, "\n# %d. %s\n%s\n", i+1, c.Title, c.curl(url, cacert))
	}
	fmt.Fprintln(w, "\nAn agent action from request to audit, in order (seed 004; see docs/guardrails.md):")
	for i, c := range demoAction {
		fmt.Fprintf(w, "\n# %c. %s\n%s\n", 'a'+i, c.Title, c.curl(url, cacert))
	}
	fmt.Fprintf(w, "\nChange the policy from another terminal; the server picks the change up within seconds,\n")
	fmt.Fprintf(w, "and command 2 then answers \"decision\": true with reason superuser:\n")
	fmt.Fprintf(w, "  go run ./cmd/gatehouse user promote carl@acme.example --db %s\n", db)
	fmt.Fprintln(w, "\nRequest logs follow on stderr. Press Ctrl-C to stop.")
}

// wsURL is the chat socket's URL on the server at base.
func wsURL(base string) string {
	if rest, ok := strings.CutPrefix(base, "https://"); ok {
		return "wss://" + rest
	}
	return "ws://" + strings.TrimPrefix(base, "http://")
}

// curl formats c as one shell line; the token stays a shell variable so the
// line is short and works after the export lines above it. cacert, when
// set, is the self-signed certificate curl must trust. A URL that names a
// variable is double-quoted so the shell expands it; a call that captures
// assigns the answer's action_id to its variable.
func (c demoCall) curl(base, cacert string) string {
	var b strings.Builder
	if c.Capture != "" {
		b.WriteString(c.Capture + "=$(")
	}
	b.WriteString("curl -sS")
	if c.Post && c.Body == "" {
		b.WriteString(" -X POST")
	}
	if cacert != "" {
		b.WriteString(" --cacert '" + cacert + "'")
	}
	if strings.Contains(c.Path, "$") {
		b.WriteString(` "` + base + c.Path + `"`)
	} else {
		b.WriteString(" '" + base + c.Path + "'")
	}
	if c.Token != "" {
		b.WriteString(` -H "Authorization: Bearer $` + c.Token + `"`)
	}
	if c.Header != "" {
		b.WriteString(" -H '" + c.Header + "'")
	}
	if c.Body != "" {
		b.WriteString(" -H 'Content-Type: application/json' -d '" + c.Body + "'")
	}
	if c.Capture != "" {
		b.WriteString(` | sed -n 's/.*"action_id":"\([^"]*\)".*/\1/p'); echo "$` + c.Capture + `"`)
	}
	return b.String()
}
