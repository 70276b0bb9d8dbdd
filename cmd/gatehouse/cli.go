package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
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
	// Verbose adds an error's internal cause to its message.
	Verbose bool
}

// DefaultConfig reads the environment: GATEHOUSE_DB, GATEHOUSE_ACTOR,
// GATEHOUSE_LANG (or the POSIX LC_ALL, LC_MESSAGES, LANG, in that order),
// GATEHOUSE_BOOTSTRAP_SUPERUSER, GATEHOUSE_API_KEY.
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
	for _, v := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if c.Lang != "" {
			break
		}
		c.Lang = getenv(v)
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.dbPath() == "" {
		return usage("empty", "Flag", "--db")
	}
	if strings.Contains(c.DB, "://") && !c.isPostgres() {
		return usage("db_url", "Store", c.storeName())
	}
	if strings.TrimSpace(c.Actor) == "" {
		return usage("empty", "Flag", "--actor")
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
	// group is the command group (user, audit, …) a usage error names
	// without a subcommand, or with one it does not have.
	group string

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

// Run opens the store, and the service on it, if the command needs them
// and runs the command.
func (m *Main) Run(ctx context.Context) error {
	if (m.cmd.readOnly || m.cmd.noCreate) && !m.Config.isPostgres() {
		// A missing directory, or a directory in the way, is named as such.
		if _, err := sqlite.CheckPath(m.Config.dbPath()); err != nil {
			return err
		}
	}
	if m.cmd.readOnly && !m.Config.isPostgres() {
		if _, err := os.Stat(m.Config.dbPath()); errors.Is(err, fs.ErrNotExist) {
			return usage("db_missing", "Path", m.Config.dbPath())
		}
	}
	if m.cmd.noCreate && !m.opts.create && !m.Config.isPostgres() {
		if _, err := os.Stat(m.Config.dbPath()); errors.Is(err, fs.ErrNotExist) {
			return usage("db_missing_no_create", "Path", m.Config.dbPath(), "Command", m.cmd.name)
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
		switch {
		case gatehouse.ErrorCode(err) == gatehouse.CodeInternal:
			// A path through a file, a server that does not answer: the
			// store cannot be used.
			return &storeError{Store: m.Config.storeName(),
				Err: fmt.Errorf("open %s: %v: %w", m.Config.storeName(), err, gatehouse.ErrUnavailable)}
		case m.Config.isPostgres() && gatehouse.ErrorCode(err) == gatehouse.CodeUnavailable:
			return &storeError{Store: m.Config.storeName(), Err: fmt.Errorf("open %s: %w", m.Config.storeName(), err)}
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
