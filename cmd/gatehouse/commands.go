package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/backup"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/service"
)

// options holds every command's flags; each command registers the ones it uses.
type options struct {
	act         actionOptions
	file        string
	output      string
	format      string
	dryRun      bool
	jsonOut     bool
	explain     bool
	subject     string
	onBehalfOf  string
	permission  string
	tool        string
	tenant      string
	context     string
	resource    string
	module      string
	permissions string
	actions     string
	categories  string
	name        string
	parent      string
	plan        string
	user        string
	actor       string
	action      string
	target      string
	after       int64
	limit       int
	// audit list
	kind, reason  string
	since, before string
	oldest        bool
	none          bool
	useDefault    bool
	root          bool
	// serve and demo
	addr        string
	reset       bool
	jwtSecret   string
	jwtIssuer   string
	jwtAudience string
	// trustUnverifiedEmail is http.Config.TrustUnverifiedEmail.
	trustUnverifiedEmail bool
	authzenAuth          string
	// authzenTokens are the shared tokens of --authzen-auth=token.
	authzenTokens  []string
	jwksURL        string
	jwksRefresh    time.Duration
	rateLimit      float64
	rateBurst      int
	trustedProxies []netip.Prefix
	decisionLog    bool
	scopes         string
	ttl            time.Duration
	tlsCert        string
	tlsKey         string
	tls            bool
	baseURL        string
	reloadEvery    time.Duration
	dir            string
	// maxApplyBytes is http.Config.MaxApplyBytes.
	maxApplyBytes int64

	// billing: the webhook configuration, secrets and sweep interval
	billingConfig  string
	mcpConfig      string
	allowEmpty     bool
	chatModel      string
	chatScript     string
	chatTools      string
	chatListOthers string

	web           bool
	webSessionTTL time.Duration
	// OpenID Connect sign-in to the web UI
	oidcIssuer, oidcName, oidcClientID string
	oidcClientSecret, oidcSecretFile   string
	oidcRedirectURL, oidcScopes        string
	// create lets serve create a SQLite database file that does not exist.
	create bool
	// audit keys and checkpoints
	auditKey        string
	publicKey       string
	checkpoints     string
	checkpointEvery time.Duration
	retention       time.Duration
	billingSecrets  []string
	billingSweep    time.Duration
}

type command struct {
	name    string
	usage   string
	summary string
	// store says whether the command needs the store and the service on
	// it opened; storeOnly opens the store alone (no snapshot compiled, no
	// superuser bootstrapped).
	store, storeOnly bool
	// readOnly commands only read the store: on a SQLite file that does
	// not exist they say so instead of creating an empty store.
	readOnly bool
	// noCreate commands (serve) refuse a SQLite file that does not exist
	// unless --create: a mistyped path, or a file deleted under a running
	// server, would otherwise start an empty store that denies everything.
	noCreate         bool
	minArgs, maxArgs int
	flags            func(fs *flag.FlagSet, o *options)
	run              func(ctx context.Context, m *Main) error
}

var commands = []command{
	{
		name: "apply", usage: "-f FILE [--format yaml|json|jsonl] [--dry-run] [--json]", store: true, maxArgs: 0,
		summary: "sync a policy document (YAML, JSON or JSON lines) into the store; sections the file omits stay as they are",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.file, "f", "", "policy file (- for stdin)")
			fs.StringVar(&o.format, "format", "", "yaml, json or jsonl (default: jsonl for a .jsonl or .ndjson file or one whose first key is \"kind\", else yaml or json by content)")
			fs.BoolVar(&o.dryRun, "dry-run", false, "print the changes without applying them")
			fs.BoolVar(&o.jsonOut, "json", false, "print the changes as JSON")
		},
		run: runApply,
	},
	{
		name: "export", readOnly: true, usage: "[-o FILE] [--format yaml|json|jsonl]", store: true, maxArgs: 0,
		summary: "write the stored policy as a document that apply accepts",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.output, "o", "", "output file (default stdout)")
			fs.StringVar(&o.format, "format", "yaml", "yaml, json or jsonl (one object per line, for very large policies)")
		},
		run: runExport,
	},
	{
		name: "import seed000", usage: "[--permissions FILE] [--actions FILE] [--categories FILE] [--dry-run]", store: true, maxArgs: 0,
		summary: "import permissions.json, actions.json (as bundles) and category.json",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.permissions, "permissions", "", "permissions.json")
			fs.StringVar(&o.actions, "actions", "", "actions.json")
			fs.StringVar(&o.categories, "categories", "", "category.json")
			fs.BoolVar(&o.dryRun, "dry-run", false, "print the changes without applying them")
			fs.BoolVar(&o.jsonOut, "json", false, "print the changes as JSON")
		},
		run: runImportSeed000,
	},
	{
		name: "import rbac", usage: "--module NAME FILE [--dry-run]", store: true, minArgs: 1, maxArgs: 1,
		summary: "sync a module's rbac.json: its permissions and default role assignments",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.module, "module", "", "module name (default: the file's directory name)")
			fs.BoolVar(&o.dryRun, "dry-run", false, "print the changes without applying them")
			fs.BoolVar(&o.jsonOut, "json", false, "print the changes as JSON")
		},
		run: runImportRBAC,
	},
	{
		name: "check", readOnly: true, store: true, maxArgs: 0,
		usage:   "--subject user:EMAIL|agent:ID (--permission NAME | --tool NAME) [--tenant ID] [--on-behalf-of user:EMAIL] [--context JSON] [--resource JSON] [--args JSON] [--explain] [--json]",
		summary: "decide whether a subject may use a permission or tool (agent actions read-only); exit 0 allowed, 3 denied",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.subject, "subject", "", "user:EMAIL or agent:ID")
			fs.StringVar(&o.onBehalfOf, "on-behalf-of", "", "user:EMAIL an agent acts for")
			fs.StringVar(&o.permission, "permission", "", "permission name")
			fs.StringVar(&o.tool, "tool", "", "tool name (checks the access permission and the tool's permission)")
			fs.StringVar(&o.tenant, "tenant", "", "tenant id")
			fs.StringVar(&o.context, "context", "", "request context as a JSON object (visible to conditions as context)")
			fs.StringVar(&o.resource, "resource", "", `resource as JSON: {"type":…,"id":…,"properties":{…}}`)
			fs.StringVar(&o.act.args, "args", "", `a tool's arguments as a JSON object, for an agent action's limits, e.g. {"amount":"20.00","currency":"EUR"}`)
			fs.BoolVar(&o.explain, "explain", false, "show the path that granted or the rule that denied")
			fs.BoolVar(&o.jsonOut, "json", false, "print the decision as JSON")
		},
		run: runCheck,
	},
	{
		name: "effective", readOnly: true, usage: "--subject user:EMAIL|agent:ID [--tenant ID] [--json]", store: true, maxArgs: 0,
		summary: "list a subject's permissions, locked features and tool flags in a tenant",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.subject, "subject", "", "user:EMAIL or agent:ID")
			fs.StringVar(&o.tenant, "tenant", "", "tenant id")
			fs.BoolVar(&o.jsonOut, "json", false, "print as JSON")
		},
		run: runEffective,
	},
	{
		name: "audit verify", readOnly: true, usage: "[--public-key FILE [--checkpoints FILE]]", store: true, maxArgs: 0,
		summary: "verify the audit hash chain, the stored policy against it, and signed checkpoints; names the first bad event, object or checkpoint",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.publicKey, "public-key", "", "public key of --audit-key (FILE.pub from audit keygen): check signed checkpoints")
			fs.StringVar(&o.checkpoints, "checkpoints", "", "checkpoints exported earlier (gatehouse audit checkpoints > FILE) and kept elsewhere; default: those the chain records")
		},
		run: runAuditVerify,
	},
	{
		name: "audit keygen", usage: "-o FILE", maxArgs: 0,
		summary: "generate the Ed25519 key that signs audit checkpoints: FILE (private) and FILE.pub",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.output, "o", "", "private key file to write (never overwritten); the public key goes to FILE.pub")
		},
		run: runAuditKeygen,
	},
	{
		name: "audit checkpoint", usage: "--audit-key FILE", store: true, maxArgs: 0,
		summary: "sign the audit chain's head and record the checkpoint in the chain",
		flags:   func(fs *flag.FlagSet, o *options) { auditKeyFlag(fs, o) },
		run:     runAuditCheckpoint,
	},
	{
		name: "audit prune", usage: "--older-than DURATION [--audit-key FILE]", store: true, maxArgs: 0,
		summary: "delete decision events older than DURATION, keeping the chain verifiable; with --audit-key, sign the new beginning",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.DurationVar(&o.retention, "older-than", 0, "prune decision events older than this, e.g. 720h")
			auditKeyFlag(fs, o)
		},
		run: runAuditPrune,
	},
	{
		name: "audit checkpoints", readOnly: true, usage: "", store: true, maxArgs: 0,
		summary: "print the signed checkpoints the chain records, as JSON lines, to keep elsewhere (> FILE)",
		run:     runAuditCheckpoints,
	},
	{
		name: "audit list", readOnly: true, store: true, maxArgs: 0,
		usage:   "[--actor A] [--action A] [--target PREFIX] [--kind decision|change] [--reason CODE] [--since TIME|DURATION] [--before TIME|DURATION|SEQ] [--after SEQ] [--oldest] [--limit N] [--json]",
		summary: "list audit events, newest first (--oldest: oldest first), decisions with allowed, reason and tool; notes on stderr when --limit cut the list",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.actor, "actor", "", "only events by this actor (here --actor filters; audit list records nothing)")
			fs.StringVar(&o.action, "action", "", "only events of this action, e.g. user.promote or decision")
			fs.StringVar(&o.target, "target", "", "only events whose target starts with this, e.g. user/")
			fs.StringVar(&o.kind, "kind", "", "only decisions (decision) or every other event (change)")
			fs.StringVar(&o.reason, "reason", "", "only decisions with this reason `CODE`, e.g. permission_missing")
			fs.StringVar(&o.since, "since", "", "only events at or after this `TIME`: RFC 3339 (2026-12-01T09:00:00Z), a date, or a duration ago (24h)")
			fs.StringVar(&o.before, "before", "", "only events before this: a `TIME` or duration ago as --since, or a sequence number (the next page, newest first)")
			fs.Int64Var(&o.after, "after", 0, "only events after this sequence number (the next page with --oldest)")
			fs.BoolVar(&o.oldest, "oldest", false, "oldest first")
			fs.IntVar(&o.limit, "limit", 100, "at most this many events")
			fs.BoolVar(&o.jsonOut, "json", false, "print as JSON lines")
		},
		run: runAuditList,
	},
	{
		name: "user show", readOnly: true, usage: "EMAIL [--json]", store: true, minArgs: 1, maxArgs: 1,
		summary: "show a user: roles, grants, superuser, visible tenants",
		flags:   jsonFlag,
		run:     runUserShow,
	},
	{
		name: "user list", readOnly: true, usage: "[--json]", store: true, maxArgs: 0,
		summary: "list the users the policy names",
		flags:   jsonFlag,
		run:     runUserList,
	},
	{
		name: "user set-tenants", usage: "EMAIL TENANT[,TENANT…] | EMAIL --none | EMAIL --default", store: true, minArgs: 1, maxArgs: 2,
		summary: "set exactly which tenants a user may see, replacing its list (the others are no longer visible)",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.BoolVar(&o.none, "none", false, "the user sees no tenant")
			fs.BoolVar(&o.useDefault, "default", false, "the user sees the default tenants again")
		},
		run: runUserSetTenants,
	},
	{
		name: "user grant", usage: "EMAIL TENANT[,TENANT…]", store: true, minArgs: 2, maxArgs: 2,
		summary: "add tenants to those a user may see, keeping the others (a user on the default tenants keeps them)",
		run: func(ctx context.Context, m *Main) error {
			tenants, err := tenantList(m.args[1])
			if err != nil {
				return err
			}
			return m.printResult(m.svc.GrantUserTenants(ctx, m.Config.Actor, m.args[0], tenants))
		},
	},
	{
		name: "user revoke", usage: "EMAIL TENANT[,TENANT…]", store: true, minArgs: 2, maxArgs: 2,
		summary: "remove tenants from those a user may see, keeping the others",
		run: func(ctx context.Context, m *Main) error {
			tenants, err := tenantList(m.args[1])
			if err != nil {
				return err
			}
			return m.printResult(m.svc.RevokeUserTenants(ctx, m.Config.Actor, m.args[0], tenants))
		},
	},
	userImportCommand,
	{
		name: "user promote", usage: "EMAIL", store: true, minArgs: 1, maxArgs: 1,
		summary: "make a user a superuser",
		run: func(ctx context.Context, m *Main) error {
			return m.printResult(m.svc.Promote(ctx, m.Config.Actor, m.args[0]))
		},
	},
	{
		name: "user demote", usage: "EMAIL", store: true, minArgs: 1, maxArgs: 1,
		summary: "take superuser away (refused for the last superuser)",
		run: func(ctx context.Context, m *Main) error {
			return m.printResult(m.svc.Demote(ctx, m.Config.Actor, m.args[0]))
		},
	},
	{
		name: "apikey create", usage: "NAME --subject agent:ID|user:EMAIL --scopes authzen,check,admin,mcp [--ttl 720h] [--json]", store: true, minArgs: 1, maxArgs: 1,
		summary: "issue an API key for a service; its token is printed once",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.subject, "subject", "", "who the key acts as: agent:ID, user:EMAIL or an email")
			fs.StringVar(&o.scopes, "scopes", "", "comma-separated: authzen, check, admin, mcp")
			fs.DurationVar(&o.ttl, "ttl", 0, "lifetime, e.g. 720h; 0: until revoked")
			fs.BoolVar(&o.jsonOut, "json", false, "print the token and key as JSON")
		},
		run: runAPIKeyCreate,
	},
	{
		name: "apikey list", readOnly: true, usage: "[--json]", store: true, maxArgs: 0,
		summary: "list API keys (never their secrets)",
		flags:   jsonFlag,
		run:     runAPIKeyList,
	},
	{
		name: "apikey revoke", usage: "ID", store: true, minArgs: 1, maxArgs: 1,
		summary: "revoke an API key",
		run: func(ctx context.Context, m *Main) error {
			if err := m.svc.RevokeAPIKey(ctx, m.Config.Actor, m.args[0]); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "revoked %s\n", m.args[0])
			return nil
		},
	},
	{
		name: "tenant create", usage: "ID [--name NAME] [--parent ID] [--plan PLAN]", store: true, minArgs: 1, maxArgs: 1,
		summary: "create a tenant",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.name, "name", "", "display name")
			fs.StringVar(&o.parent, "parent", "", "parent tenant id")
			fs.StringVar(&o.plan, "plan", "", "plan of the tenant and its subtree")
		},
		run: func(ctx context.Context, m *Main) error {
			t := gatehouse.Tenant{ID: m.args[0], Name: m.opts.name, Parent: m.opts.parent, Plan: m.opts.plan}
			return m.printResult(m.svc.CreateTenant(ctx, m.Config.Actor, t))
		},
	},
	{
		name: "tenant move", usage: "ID --parent ID|--root", store: true, minArgs: 1, maxArgs: 1,
		summary: "move a tenant under another parent, or to the root",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.parent, "parent", "", "new parent tenant id")
			fs.BoolVar(&o.root, "root", false, "make the tenant a root")
		},
		run: func(ctx context.Context, m *Main) error {
			if (m.opts.parent == "") == !m.opts.root {
				return usage("one_of", "Flags", "--parent, --root")
			}
			return m.printResult(m.svc.MoveTenant(ctx, m.Config.Actor, m.args[0], m.opts.parent))
		},
	},
	{
		name: "plan set", usage: "--tenant ID|--user EMAIL PLAN|--none [--json]", store: true, maxArgs: 1,
		summary: "set the own plan of a tenant (covers its subtree) or of a user",
		flags:   planFlags(true),
		run:     runPlanSet,
	},
	{
		name: "plan show", readOnly: true, usage: "--tenant ID|--user EMAIL [--json]", store: true, maxArgs: 0,
		summary: "show a tenant's or user's own and effective plan, its features and billing state",
		flags:   planFlags(false),
		run:     runPlanShow,
	},
	{
		name: "tenant list", readOnly: true, usage: "[--json]", store: true, maxArgs: 0,
		summary: "list tenants as a tree",
		flags:   jsonFlag,
		run:     runTenantList,
	},
	{
		name: "serve", store: true, noCreate: true, maxArgs: 0,
		usage:   "--jwt-secret SECRET [--addr HOST:PORT] [--authzen-auth jwt|none] [--base-url URL] [--jwt-issuer ISS] [--jwt-audience AUD] [--billing-config FILE --billing-secret SECRET] [--mcp-config FILE] [--create]",
		summary: "serve the AuthZEN 1.0 and /api/v1 HTTP API (and with --mcp-config the MCP gateway at /mcp) until interrupted",
		flags:   serveFlags,
		run:     runServe,
	},
	{
		name: "mcp tools", readOnly: true, usage: "--subject user:EMAIL|agent:ID [--tenant ID] [--mcp-config FILE] [--json]", store: true, maxArgs: 0,
		summary: "list the MCP gateway's tools a subject sees in a tenant (tools/list)",
		flags:   mcpToolsFlags,
		run:     runMCPTools,
	},
	{
		name: "mcp stdio", usage: "[--tenant ID] [--mcp-config FILE]   (GATEHOUSE_API_KEY: an API key with the mcp scope)", store: true, maxArgs: 0,
		summary: "serve the MCP gateway to a local client over stdin and stdout, as the API key's subject",
		flags:   mcpStdioFlags,
		run:     runMCPStdio,
	},
	{
		name: "demo", usage: "[--dir DIR] [--addr HOST:PORT]", maxArgs: 0,
		summary: "serve the example policy with demo users and print ready-to-paste curl commands",
		flags:   demoFlags,
		run:     runDemo,
	},
	{
		name: "backup", usage: "[-o FILE]", storeOnly: true, maxArgs: 0,
		summary: "write the whole store (policy, audit trail, actions, billing, API keys) as an archive for restore",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.output, "o", "", "archive file (default stdout)")
		},
		run: runBackup,
	},
	{
		name: "restore", usage: "-f FILE|-", storeOnly: true, maxArgs: 0,
		summary: "restore a backup archive into an empty store, in one transaction, and verify its audit chain",
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.file, "f", "", "archive file (- for stdin)")
		},
		run: runRestore,
	},
	{
		name: "action authorize", store: true, maxArgs: 0, flags: actionAuthorizeFlags, run: runActionAuthorize,
		usage:   "--subject agent:ID --tool NAME --tenant ID [--on-behalf-of user:EMAIL] [--args JSON] [--key KEY] [--json]",
		summary: "decide an agent action and, if allowed, reserve it (pending until confirmed when required); exit 3 denied",
	},
	{
		name: "action simulate", readOnly: true, store: true, maxArgs: 0, flags: actionSimulateFlags, run: runActionSimulate,
		usage:   "(--subject … --tool … --tenant … [--args JSON] | --replay FILE [--days N] [--examples N]) [--json]",
		summary: "decide an action without reserving it, or replay recorded actions against a proposed policy",
	},
	{
		name: "action confirm", usage: "ID --as user:EMAIL", store: true, minArgs: 1, maxArgs: 1, flags: actionMoveFlags,
		summary: "confirm a pending action, as its customer or an approver", run: runActionConfirm,
	},
	{
		name: "action cancel", usage: "ID --as SUBJECT", store: true, minArgs: 1, maxArgs: 1, flags: actionMoveFlags,
		summary: "cancel a pending action, releasing its reservation", run: runActionCancel,
	},
	{
		name: "action execute", usage: "ID --as SUBJECT", store: true, minArgs: 1, maxArgs: 1, flags: actionMoveFlags,
		summary: "record that a confirmed action was carried out", run: runActionExecute,
	},
	{
		name: "action fail", usage: "ID --as SUBJECT --error MESSAGE", store: true, minArgs: 1, maxArgs: 1, flags: actionFailFlags,
		summary: "record that a confirmed action failed, releasing its reservation", run: runActionFail,
	},
	{
		name: "action show", readOnly: true, usage: "ID [--json]", store: true, minArgs: 1, maxArgs: 1, flags: jsonFlag,
		summary: "show an action record and its lifecycle", run: runActionShow,
	},
	{
		name: "action list", readOnly: true, store: true, maxArgs: 0, flags: actionListFlags, run: runActionList,
		usage:   "[--tenant ID] [--action TYPE] [--status S] [--subject S] [--since T] [--until T] [--after SEQ] [--limit N] [--json]",
		summary: "list action records, oldest first; --after pages on",
	},
	{
		name: "action policy", store: true, maxArgs: 2, flags: actionPolicyFlags, run: runActionPolicy,
		usage:   "[get] --tenant ID [--json] | set ACTION --tenant ID [--enabled B] [--confirmation B] [--limits JSON] | set ACTION --tenant ID --inherit",
		summary: "show each action's effective policy in a tenant and where each part comes from, or change the tenant's own",
	},
	{
		name: "action limits", store: true, maxArgs: 4, flags: actionLimitsFlags, run: runActionLimits,
		usage:   "[get] --tenant ID [--json] | set ACTION LIMIT VALUE --tenant ID [--window D] [--currency C] | remove ACTION LIMIT --tenant ID",
		summary: "list a tenant's effective action limits, one line per limit, or set or remove one (the others become the tenant's own)",
	},
	{
		name: "version", usage: "[--json]", maxArgs: 0, flags: jsonFlag, run: runVersion,
		summary: "print the module version, VCS revision (+dirty for uncommitted changes) and Go version of this binary (also --version)",
	},
	{
		name: "migrate", usage: "", store: true, maxArgs: 0,
		summary: "create or upgrade the database schema",
		run: func(ctx context.Context, m *Main) error {
			cur, latest, err := m.store.SchemaVersion(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "schema version %d (latest %d)\n", cur, latest)
			return nil
		},
	},
}

func jsonFlag(fs *flag.FlagSet, o *options) { fs.BoolVar(&o.jsonOut, "json", false, "print as JSON") }

func readInput(m *Main, path string) ([]byte, error) {
	if path == "-" {
		b, err := readAll(m.Stdin)
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usage("file", "Detail", err)
	}
	return b, nil
}

func runApply(ctx context.Context, m *Main) error {
	if m.opts.file == "" {
		return usage("required", "Flag", "-f FILE")
	}
	if !slices.Contains([]string{"", "yaml", "json", "jsonl"}, m.opts.format) {
		return usage("format", "Format", m.opts.format)
	}
	doc, err := readDocument(ctx, m)
	if err != nil {
		return err
	}
	return m.printResult(m.svc.ApplyTaking(ctx, m.Config.Actor, doc, m.opts.dryRun))
}

// readDocument reads and parses the policy document of apply -f: a
// JSON-lines document a line at a time, of any size; a YAML or JSON one
// whole, of any size from a file and of at most maxInput bytes from stdin.
func readDocument(ctx context.Context, m *Main) (*policy.Document, error) {
	name, in := m.opts.file, m.Stdin
	if name == "-" {
		name = "stdin"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, usage("file", "Detail", err)
		}
		defer f.Close()
		in = f
	}
	br := bufio.NewReaderSize(in, 64<<10)
	head, _ := br.Peek(512)
	var (
		doc *policy.Document
		err error
	)
	if m.opts.format == "jsonl" || m.opts.format == "" && policy.IsLines(name, head) {
		doc, err = policy.ParseLines(name, br, -1)
	} else {
		var data []byte
		if m.opts.file == "-" {
			data, err = readAll(br)
		} else {
			data, err = io.ReadAll(br)
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		// A file is the operator's to size, so a policy too large for one
		// request can still be applied from disk.
		doc, err = policy.ParseMax(name, data, max(policy.DefaultMaxDocument, int64(len(data))))
	}
	if err != nil {
		return nil, m.explainParseError(ctx, err)
	}
	return doc, nil
}

func runExport(ctx context.Context, m *Main) error {
	if m.opts.format != "yaml" && m.opts.format != "json" && m.opts.format != "jsonl" {
		return usage("format", "Format", m.opts.format)
	}
	p, _, err := m.svc.Policy(ctx)
	if err != nil {
		return err
	}
	if m.opts.output == "" {
		return policy.Encode(m.Stdout, p, m.opts.format)
	}
	// Through a temporary file: a failed export leaves no partial document
	// that apply would read as a shorter policy.
	_, err = writeFileAtomic(m.opts.output, func(w io.Writer) (backup.Header, error) {
		return backup.Header{}, policy.Encode(w, p, m.opts.format)
	})
	return err
}

func runImportSeed000(ctx context.Context, m *Main) error {
	if m.opts.permissions == "" && m.opts.actions == "" && m.opts.categories == "" {
		return usage("at_least_one", "Flags", "--permissions, --actions, --categories")
	}
	var files [3][]byte
	for i, path := range []string{m.opts.permissions, m.opts.actions, m.opts.categories} {
		if path == "" {
			continue
		}
		b, err := readInput(m, path)
		if err != nil {
			return err
		}
		files[i] = b
	}
	return m.printResult(m.svc.ImportSeed000(ctx, m.Config.Actor, files[0], files[1], files[2], m.opts.dryRun))
}

func runImportRBAC(ctx context.Context, m *Main) error {
	path := m.args[0]
	module := m.opts.module
	if module == "" {
		dir := strings.TrimSuffix(path, "/rbac.json")
		if dir == path {
			return usage("module_required")
		}
		module = dir[strings.LastIndex(dir, "/")+1:]
	}
	data, err := readInput(m, path)
	if err != nil {
		return err
	}
	return m.printResult(m.svc.ImportModuleRBAC(ctx, m.Config.Actor, module, data, m.opts.dryRun))
}

// explainParseError adds to the problems of a document that does not
// parse why a reference the stored policy has is unknown: the document's
// section replaces the stored one (see policy.ExplainReplaced).
func (m *Main) explainParseError(ctx context.Context, err error) error {
	var perr *policy.Error
	if !errors.As(err, &perr) {
		return err
	}
	if current, _, lerr := m.svc.Policy(ctx); lerr == nil {
		policy.ExplainReplaced(current, nil, perr.Problems)
	}
	return err
}

// printResult prints what a change did, or returns its error.
func (m *Main) printResult(res service.Result, err error) error {
	if err != nil {
		return err
	}
	if m.opts.jsonOut {
		return writeJSON(m, res)
	}
	if len(res.Changes) > 0 {
		fmt.Fprint(m.Stdout, policy.FormatDiff(res.Changes))
	}
	switch {
	case res.DryRun:
		fmt.Fprintf(m.Stdout, "dry run: %d change(s) not applied (policy version %d)\n", len(res.Changes), res.Version)
	case len(res.Changes) == 0:
		fmt.Fprintf(m.Stdout, "policy unchanged (version %d)\n", res.Version)
	default:
		fmt.Fprintf(m.Stdout, "applied %d change(s); policy version %d\n", len(res.Changes), res.Version)
	}
	return nil
}

func runCheck(ctx context.Context, m *Main) error {
	o := m.opts
	if o.subject == "" {
		return usage("required", "Flag", "--subject")
	}
	if (o.permission == "") == (o.tool == "") {
		return usage("one_of", "Flags", "--permission, --tool")
	}
	subject, err := gatehouse.ParseSubject(o.subject)
	if err != nil {
		return usage("bad_value", "Flag", "--subject", "Detail", err)
	}
	q := gatehouse.Question{Request: gatehouse.Request{Subject: subject, Permission: o.permission, Tenant: o.tenant},
		Tool: o.tool, Explain: o.explain, Lang: m.lang(), Surface: "cli"}
	if o.onBehalfOf != "" {
		if q.OnBehalfOf, err = gatehouse.ParseSubject(o.onBehalfOf); err != nil {
			return usage("bad_value", "Flag", "--on-behalf-of", "Detail", err)
		}
	}
	if o.context != "" {
		if err := decodeObject("--context", o.context, &q.Context); err != nil {
			return err
		}
	}
	if o.resource != "" {
		if err := decodeObject("--resource", o.resource, &q.Resource); err != nil {
			return err
		}
	}
	if o.act.args != "" {
		if err := decodeObject("--args", o.act.args, &q.Args); err != nil {
			return err
		}
	}
	// A name the policy lacks is the asker's mistake, not a denial.
	if err := m.svc.CheckNames(o.tenant, o.tool, o.permission); err != nil {
		return usageErrorf("%v", err)
	}
	a, err := m.svc.Evaluate(ctx, gatehouse.Operator, q)
	if err != nil {
		return err
	}
	return m.printAnswer(a, o.explain)
}

// printAnswer reports the service's answer: the verdict, reason and
// message, and for an agent action its problem, pending record and limit;
// with explain the decision path. A denial exits with status 3.
func (m *Main) printAnswer(a gatehouse.Answer, explain bool) error {
	if m.opts.jsonOut {
		if err := writeJSON(m, a); err != nil {
			return err
		}
	} else {
		verdict := "DENIED"
		if a.Allowed {
			verdict = "ALLOWED"
		}
		fmt.Fprintf(m.Stdout, "%s (%s) %s\n", verdict, a.Reason, a.Message)
		if a.Problem != "" {
			fmt.Fprintf(m.Stdout, "  problem: %s\n", a.Problem)
		}
		if a.ActionID != "" {
			fmt.Fprintf(m.Stdout, "  action %s %s", a.ActionID, a.Status)
			if !a.ExpiresAt.IsZero() {
				fmt.Fprintf(m.Stdout, ", confirm before %s", a.ExpiresAt.Format(time.RFC3339))
			}
			if a.Replayed {
				fmt.Fprint(m.Stdout, " (replayed)")
			}
			fmt.Fprintln(m.Stdout)
		}
		if explain {
			w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
			for i, s := range a.Steps {
				detail := s.Detail
				if len(s.Path) > 0 {
					detail = strings.TrimSpace(detail + " " + strings.Join(s.Path, " → "))
				}
				fmt.Fprintf(w, "  %d.\t%s\t%s\t%s\t%s\n", i+1, s.Rule, s.Outcome, s.Subject, detail)
			}
			w.Flush()
		}
		if explain || a.Action != "" {
			fmt.Fprintf(m.Stdout, "policy version %d\n", a.Version)
		}
	}
	if !a.Allowed {
		return errDenied
	}
	return nil
}

// decodeObject decodes flag's value s, a JSON object, into v.
func decodeObject(flag, s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field == "" {
			return usage("json_not_object", "Flag", flag)
		}
		return usage("not_json", "Flag", flag, "Detail", err)
	}
	if dec.More() {
		return usage("json_trailing", "Flag", flag)
	}
	return nil
}

func runEffective(ctx context.Context, m *Main) error {
	if m.opts.subject == "" {
		return usage("required", "Flag", "--subject")
	}
	subject, err := gatehouse.ParseSubject(m.opts.subject)
	if err != nil {
		return usage("bad_value", "Flag", "--subject", "Detail", err)
	}
	if err := m.svc.CheckNames(m.opts.tenant, "", ""); err != nil {
		return usage("bad_value", "Flag", "--tenant", "Detail", err)
	}
	eff, err := m.svc.Effective(subject, m.opts.tenant)
	if err != nil {
		return err
	}
	if m.opts.jsonOut {
		return writeJSON(m, eff)
	}
	fmt.Fprintf(m.Stdout, "subject     %s\n", eff.Subject)
	if eff.Tenant != "" {
		fmt.Fprintf(m.Stdout, "tenant      %s\n", eff.Tenant)
	}
	fmt.Fprintf(m.Stdout, "superuser   %t\nplan        %s\npermissions %s\n", eff.Superuser, eff.Plan, strings.Join(eff.Permissions, ", "))
	for _, l := range eff.Locked {
		fmt.Fprintf(m.Stdout, "locked      %s (feature %s, plan %s)\n", l.Permission, l.Feature, l.Plan)
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	for _, t := range eff.Tools {
		fmt.Fprintf(w, "tool\t%s\t%s\t%s\n", t.Tool, map[bool]string{true: "allowed", false: "denied"}[t.Allowed], t.Reason)
	}
	return w.Flush()
}

func runAuditVerify(ctx context.Context, m *Main) error {
	pub, cps, err := m.readVerifyInputs()
	if err != nil {
		return err
	}
	var rep audit.Report
	if pub != nil {
		rep, err = m.svc.VerifyAuditSigned(ctx, pub, cps)
	} else {
		rep, err = m.svc.VerifyAudit(ctx)
	}
	if err != nil {
		return fmt.Errorf("audit verify failed: %w", err)
	}
	fmt.Fprintf(m.Stdout, "audit chain ok: %d events, head %d %s\n", rep.Events, rep.Head.Seq, rep.Head.Hash)
	fmt.Fprintf(m.Stdout, "policy ok: %d stored objects match their last change events\n", rep.Objects)
	switch {
	case pub == nil:
		fmt.Fprintf(m.Stdout, "checkpoints not checked: the chain records %d; pass --public-key (and --checkpoints FILE kept elsewhere)\n", rep.Checkpoints)
	case rep.LastCheckpoint == nil:
		fmt.Fprintln(m.Stdout, "checkpoints ok: none to check")
	default:
		fmt.Fprintf(m.Stdout, "checkpoints ok: the chain holds every one; last good %s\n", rep.LastCheckpoint)
	}
	return nil
}

func runUserShow(ctx context.Context, m *Main) error {
	v, err := m.svc.User(ctx, m.args[0])
	if err != nil {
		return err
	}
	if m.opts.jsonOut {
		return writeJSON(m, v)
	}
	fmt.Fprintf(m.Stdout, "email       %s\n", v.Email)
	if !v.Known {
		fmt.Fprintln(m.Stdout, "            (not in the policy)")
	}
	fmt.Fprintf(m.Stdout, "superuser   %t\n", v.Superuser)
	visible := strings.Join(v.VisibleTenants, ", ")
	if v.DefaultTenants && !v.Superuser {
		visible += " (default tenants)"
	}
	fmt.Fprintf(m.Stdout, "tenants     %s\n", visible)
	for _, a := range v.Roles {
		fmt.Fprintf(m.Stdout, "role        %s%s\n", a.Role, scope(a.Tenant, a.Condition))
	}
	for _, g := range v.Grants {
		fmt.Fprintf(m.Stdout, "grant       %s%s\n", g.Permission, scope(g.Tenant, g.Condition))
	}
	if v.Plan != "" {
		fmt.Fprintf(m.Stdout, "plan        %s\n", v.Plan)
	}
	return nil
}

func scope(tenant, condition string) string {
	s := ""
	if tenant != "" {
		s += " in " + tenant
	}
	if condition != "" {
		s += " if " + condition
	}
	return s
}

func runUserList(ctx context.Context, m *Main) error {
	users, err := m.svc.Users(ctx)
	if err != nil {
		return err
	}
	if m.opts.jsonOut {
		return writeJSON(m, users)
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	for _, u := range users {
		tenants := "(default)"
		if u.Tenants != nil {
			tenants = strings.Join(u.Tenants, ",")
		}
		su := ""
		if u.Superuser {
			su = "superuser"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", u.Email, su, tenants)
	}
	return w.Flush()
}

func runUserSetTenants(ctx context.Context, m *Main) error {
	none, def := m.opts.none, m.opts.useDefault
	email := m.args[0]
	switch {
	case none && def, (none || def) && len(m.args) == 2, !none && !def && len(m.args) != 2:
		return usage("tenants_missing")
	case def:
		return m.printResult(m.svc.ResetUserTenants(ctx, m.Config.Actor, email))
	case none:
		return m.printResult(m.svc.SetUserTenants(ctx, m.Config.Actor, email, nil))
	}
	tenants, err := tenantList(m.args[1])
	if err != nil {
		return err
	}
	return m.printResult(m.svc.SetUserTenants(ctx, m.Config.Actor, email, tenants))
}

// tenantList splits a comma-separated TENANT[,TENANT…] argument.
func tenantList(arg string) ([]string, error) {
	var tenants []string
	for _, t := range strings.Split(arg, ",") {
		if t = strings.TrimSpace(t); t != "" {
			tenants = append(tenants, t)
		}
	}
	if len(tenants) == 0 {
		return nil, usage("no_tenant")
	}
	return tenants, nil
}

func runTenantList(ctx context.Context, m *Main) error {
	tenants, err := m.svc.Tenants(ctx)
	if err != nil {
		return err
	}
	if m.opts.jsonOut {
		return writeJSON(m, tenants)
	}
	children := map[string][]gatehouse.Tenant{}
	for _, t := range tenants {
		children[t.Parent] = append(children[t.Parent], t)
	}
	var walk func(parent string, depth int)
	walk = func(parent string, depth int) {
		kids := children[parent]
		slices.SortFunc(kids, func(a, b gatehouse.Tenant) int { return strings.Compare(a.ID, b.ID) })
		for _, t := range kids {
			line := strings.Repeat("  ", depth) + t.ID
			if t.Name != "" {
				line += "  " + t.Name
			}
			if t.Plan != "" {
				line += "  [plan " + t.Plan + "]"
			}
			fmt.Fprintln(m.Stdout, line)
			walk(t.ID, depth+1)
		}
	}
	walk("", 0)
	return nil
}

func writeJSON(m *Main, v any) error {
	enc := json.NewEncoder(m.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
