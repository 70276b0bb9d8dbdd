package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/locale"
	"github.com/gatehouse/gatehouse/postgres"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/sqlite"
)

// Exit statuses.
const (
	exitOK       = 0
	exitInternal = 1 // an unexpected failure
	exitUsage    = 2 // bad usage or input, or a store that cannot be used
	exitDenied   = 3 // check: the decision is a deny
)

// Config is what every command shares; flags and environment map onto it.
type Config struct {
	// DB is the store: a SQLite file path, optionally prefixed "sqlite:",
	// or a postgres:// URL.
	DB string
	// Actor is recorded in the audit trail for every change.
	Actor string
	// Lang picks the language of decision messages.
	Lang string
	// BootstrapSuperuser becomes a superuser when the store has none.
	BootstrapSuperuser string
	// APIKey is who `mcp stdio` serves: an API key with the mcp scope, in
	// the environment rather than on a command line anyone can list.
	APIKey string
}

// DefaultConfig reads the environment: GATEHOUSE_DB, GATEHOUSE_ACTOR,
// GATEHOUSE_LANG (or LANG), GATEHOUSE_BOOTSTRAP_SUPERUSER,
// GATEHOUSE_API_KEY.
func DefaultConfig(getenv func(string) string) Config {
	c := Config{
		DB:                 getenv("GATEHOUSE_DB"),
		Actor:              getenv("GATEHOUSE_ACTOR"),
		Lang:               getenv("GATEHOUSE_LANG"),
		BootstrapSuperuser: getenv("GATEHOUSE_BOOTSTRAP_SUPERUSER"),
		APIKey:             getenv("GATEHOUSE_API_KEY"),
	}
	if c.DB == "" {
		c.DB = "gatehouse.db"
	}
	if c.Actor == "" {
		user := getenv("USER")
		if user == "" {
			user = "unknown"
		}
		c.Actor = "cli:" + user
	}
	if c.Lang == "" {
		c.Lang = getenv("LANG")
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.dbPath() == "" {
		return usageErrorf("--db is empty")
	}
	if strings.Contains(c.DB, "://") && !c.isPostgres() {
		return usageErrorf("--db %s: want a SQLite path, sqlite:PATH, or postgres://…", c.storeName())
	}
	if strings.TrimSpace(c.Actor) == "" {
		return usageErrorf("--actor is empty")
	}
	return nil
}

func (c Config) dbPath() string { return strings.TrimPrefix(c.DB, "sqlite:") }

// isPostgres reports whether DB names a PostgreSQL server.
func (c Config) isPostgres() bool {
	return strings.HasPrefix(c.DB, "postgres://") || strings.HasPrefix(c.DB, "postgresql://")
}

// storeName names the store for messages, without a password.
func (c Config) storeName() string {
	if !strings.Contains(c.DB, "://") {
		return c.dbPath()
	}
	u, err := url.Parse(c.DB)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// store is what the CLI needs of either store.
type store interface {
	gatehouse.Store
	gatehouse.Dumper
	gatehouse.Restorer
	SchemaVersion(ctx context.Context) (current, latest int, err error)
}

// Main is the program: ParseFlags picks a command, Run runs it, Close
// releases the store. Tests run it in-process.
type Main struct {
	Config Config
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Logger *slog.Logger

	cmd  *command
	opts options
	args []string

	catalog *locale.Catalog
	store   store
	svc     *service.Service
	// auditKey signs audit checkpoints while serving (--audit-key).
	auditKey ed25519.PrivateKey
}

// NewMain returns a Main reading its defaults from getenv.
func NewMain(getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) *Main {
	return &Main{
		Config: DefaultConfig(getenv),
		Stdin:  stdin,
		Stdout: stdout,
		Stderr: stderr,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// Execute runs one command line and returns the exit status.
func Execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	m := NewMain(os.Getenv, stdin, stdout, stderr)
	err := m.ParseFlags(args)
	if err == nil {
		err = m.Run(ctx)
	}
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	return m.report(err)
}

// errUsage marks an error in how the command was called.
var errUsage = errors.New("usage")

func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errUsage)
}

// errDenied makes check exit with status 3 after printing its decision.
var errDenied = errors.New("denied")

// errHelp ends a run that printed help.
var errHelp = errors.New("help")

func (m *Main) report(err error) int {
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.Is(err, errDenied):
		return exitDenied
	case errors.Is(err, errUsage):
		fmt.Fprintf(m.Stderr, "gatehouse: %v\n", strings.TrimSuffix(err.Error(), ": usage"))
		if m.cmd != nil {
			fmt.Fprintf(m.Stderr, "usage: gatehouse %s %s\n", m.cmd.name, m.cmd.usage)
		} else {
			fmt.Fprintln(m.Stderr, "run 'gatehouse help' for the list of commands")
		}
		return exitUsage
	}
	fmt.Fprintf(m.Stderr, "gatehouse: %v\n", err)
	code := gatehouse.ErrorCode(err)
	if code == gatehouse.CodeInternal {
		return exitInternal
	}
	if m.catalog != nil {
		fmt.Fprintf(m.Stderr, "(%s) %s\n", code, m.catalog.Error(m.lang(), err))
	}
	return exitUsage
}

// ParseFlags picks the command named by the leading arguments and parses
// its flags; global flags (--db, --actor, --lang) are accepted anywhere.
func (m *Main) ParseFlags(args []string) error {
	cat, err := locale.New()
	if err != nil {
		return err
	}
	m.catalog = cat
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		m.printHelp()
		return errHelp
	}
	cmd, rest := findCommand(args)
	if cmd == nil {
		return usageErrorf("unknown command %q", strings.Join(args[:min(2, len(args))], " "))
	}
	m.cmd = cmd
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&m.Config.DB, "db", m.Config.DB, "store: SQLite file path (env GATEHOUSE_DB)")
	fs.StringVar(&m.Config.Actor, "actor", m.Config.Actor, "who the audit trail records for changes (env GATEHOUSE_ACTOR)")
	fs.StringVar(&m.Config.Lang, "lang", m.Config.Lang, "language of messages: de, en, es, fr, it, zh")
	fs.StringVar(&m.Config.BootstrapSuperuser, "bootstrap-superuser", m.Config.BootstrapSuperuser, "make this email a superuser if the store has none (env GATEHOUSE_BOOTSTRAP_SUPERUSER)")
	if cmd.flags != nil {
		cmd.flags(fs, &m.opts)
	}
	// Accept flags after positional arguments too.
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				m.printCommandHelp(fs)
				return errHelp
			}
			return usageErrorf("%v", err)
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		m.args = append(m.args, rest[0])
		rest = rest[1:]
	}
	if len(m.args) < cmd.minArgs || (cmd.maxArgs >= 0 && len(m.args) > cmd.maxArgs) {
		return usageErrorf("wrong number of arguments")
	}
	return m.Config.Validate()
}

// Run opens the store, and the service on it, if the command needs them
// and runs the command.
func (m *Main) Run(ctx context.Context) error {
	if m.cmd.readOnly && !m.Config.isPostgres() {
		if _, err := os.Stat(m.Config.dbPath()); errors.Is(err, fs.ErrNotExist) {
			return usageErrorf("database %s does not exist: apply a policy first (gatehouse apply -f FILE --db %s) or name another with --db", m.Config.dbPath(), m.Config.dbPath())
		}
	}
	if m.cmd.noCreate && !m.opts.create && !m.Config.isPostgres() {
		if _, err := os.Stat(m.Config.dbPath()); errors.Is(err, fs.ErrNotExist) {
			return usageErrorf("database %s does not exist, and %s does not create one unless --create: apply a policy first (gatehouse apply -f FILE --db %s), restore a backup, or name the right file with --db",
				m.Config.dbPath(), m.cmd.name, m.Config.dbPath())
		}
	}
	var err error
	switch {
	case m.cmd.store:
		err = m.open(ctx)
	case m.cmd.storeOnly:
		err = m.openStore(ctx)
	}
	if err != nil {
		return err
	}
	return m.cmd.run(ctx, m)
}

// open opens the store and the service on it.
func (m *Main) open(ctx context.Context) error {
	if err := m.openStore(ctx); err != nil {
		return err
	}
	return m.openService(ctx)
}

func (m *Main) openStore(ctx context.Context) error {
	var st store
	var err error
	if m.Config.isPostgres() {
		st, err = postgres.Open(ctx, m.Config.DB, postgres.WithLogger(m.Logger))
	} else {
		st, err = sqlite.Open(ctx, m.Config.dbPath())
	}
	if err != nil {
		if gatehouse.ErrorCode(err) == gatehouse.CodeInternal {
			// A missing directory or an unreadable file: the store cannot be used.
			return fmt.Errorf("open %s: %v: %w", m.Config.storeName(), err, gatehouse.ErrUnavailable)
		}
		return fmt.Errorf("open %s: %w", m.Config.storeName(), err)
	}
	m.store = st
	return nil
}

func (m *Main) openService(ctx context.Context) error {
	svc, err := service.Open(ctx, m.store, service.Config{
		BootstrapSuperuser: m.Config.BootstrapSuperuser,
		Logger:             m.Logger,
		Catalog:            m.catalog,
	})
	if err != nil {
		return err
	}
	m.svc = svc
	return nil
}

// Close releases the store.
func (m *Main) Close() error {
	if m.store == nil {
		return nil
	}
	err := m.store.Close()
	m.store = nil
	return err
}

func (m *Main) lang() string {
	if m.catalog == nil {
		return locale.Languages[0]
	}
	return m.catalog.Match(m.Config.Lang)
}

func findCommand(args []string) (*command, []string) {
	if len(args) >= 2 {
		for i := range commands {
			if commands[i].name == args[0]+" "+args[1] {
				return &commands[i], args[2:]
			}
		}
	}
	for i := range commands {
		if commands[i].name == args[0] {
			return &commands[i], args[1:]
		}
	}
	return nil, nil
}

func (m *Main) printHelp() {
	fmt.Fprintln(m.Stdout, "gatehouse — permissions and guardrails for AI assistants")
	fmt.Fprintln(m.Stdout, "\nusage: gatehouse COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	byName := map[string]*command{}
	for i := range commands {
		names = append(names, commands[i].name)
		byName[commands[i].name] = &commands[i]
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(m.Stdout, "  %-22s %s\n", n, byName[n].summary)
	}
	fmt.Fprintln(m.Stdout, "\nglobal flags: --db PATH (default ./gatehouse.db, env GATEHOUSE_DB), --actor NAME, --lang LANG")
	fmt.Fprintln(m.Stdout, "exit status: 0 ok, 1 internal error, 2 usage or input error, 3 check denied")
}

func (m *Main) printCommandHelp(fs *flag.FlagSet) {
	fmt.Fprintf(m.Stdout, "usage: gatehouse %s %s\n\n%s\n\nflags:\n", m.cmd.name, m.cmd.usage, m.cmd.summary)
	fs.SetOutput(m.Stdout)
	fs.PrintDefaults()
}
