package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	gatehttp "github.com/gatehouse/gatehouse/http"
	"github.com/gatehouse/gatehouse/service"
)

// defaultAddr is where serve and demo listen unless told otherwise.
const defaultAddr = "127.0.0.1:8080"

func serveFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.addr, "addr", defaultAddr, "address to listen on")
	fs.StringVar(&o.jwtSecret, "jwt-secret", "", "HS256 secret that signs bearer tokens, at least 32 bytes (env GATEHOUSE_JWT_SECRET)")
	fs.StringVar(&o.jwtIssuer, "jwt-issuer", "", "required iss claim of bearer tokens, if set")
	fs.StringVar(&o.jwtAudience, "jwt-audience", "", "required aud claim of bearer tokens, if set")
	fs.BoolVar(&o.trustUnverifiedEmail, "jwt-trust-unverified-email", false, "use a token's email claim for an opaque sub even when email_verified is not true")
	fs.StringVar(&o.authzenAuth, "authzen-auth", gatehttp.AuthJWT, "jwt: the AuthZEN endpoints need a bearer JWT; token: one of the --authzen-token values; none: they are open (trusted networks only)")
	fs.Func("authzen-token", "a shared bearer token for --authzen-auth=token, at least 16 bytes; repeat to rotate (env GATEHOUSE_AUTHZEN_TOKENS, comma-separated)", func(v string) error {
		o.authzenTokens = append(o.authzenTokens, v)
		return nil
	})
	fs.StringVar(&o.jwksURL, "jwks-url", "", "an identity provider's JWKS: accept its RS256/ES256/EdDSA bearer tokens (by kid)")
	fs.DurationVar(&o.jwksRefresh, "jwks-refresh", time.Hour, "how often to refetch --jwks-url (an unknown kid refetches at once)")
	fs.Float64Var(&o.rateLimit, "rate-limit", 0, "requests per second each verified caller, and each client address for failed or unauthenticated attempts, may make; 0: unlimited")
	fs.IntVar(&o.rateBurst, "rate-burst", 0, "requests a caller may make at once above --rate-limit (default: twice the limit)")
	fs.BoolVar(&o.decisionLog, "decision-log", true, "record every decision in the audit trail (asynchronously; dropped ones are counted in /metrics)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain); needs --tls-key")
	fs.StringVar(&o.tlsKey, "tls-key", "", "the PEM private key of --tls-cert")
	fs.StringVar(&o.baseURL, "base-url", "", "public base URL in the AuthZEN metadata (default: the scheme and Host of each request, or a trusted proxy's X-Forwarded-*)")
	fs.Func("trusted-proxy", "a reverse proxy's address or CIDR whose X-Forwarded-For/-Proto/-Host/-Prefix are believed; repeat or comma-separate", func(v string) error {
		for part := range strings.SplitSeq(v, ",") {
			p, err := parseProxy(strings.TrimSpace(part))
			if err != nil {
				return err
			}
			o.trustedProxies = append(o.trustedProxies, p)
		}
		return nil
	})
	fs.DurationVar(&o.reloadEvery, "reload-interval", 2*time.Second, "how often to pick up policy changes made by other processes")
	fs.Int64Var(&o.maxApplyBytes, "max-apply-bytes", gatehttp.DefaultConfig().MaxApplyBytes, "largest policy document POST /api/v1/policy:apply accepts, in bytes (larger ones: 413 payload_too_large)")
	fs.BoolVar(&o.allowEmpty, "allow-empty", false, "report ready (/readyz) even while no policy has been applied")
	fs.BoolVar(&o.create, "create", false, "create the SQLite database if --db names no file (without it, a missing file is an error)")
	checkpointFlags(fs, o)
	billingFlags(fs, o)
	mcpFlags(fs, o)
	chatFlags(fs, o)
	webFlags(fs, o)
}

func runServe(ctx context.Context, m *Main) error {
	o := m.opts
	if o.jwtSecret == "" {
		o.jwtSecret = os.Getenv("GATEHOUSE_JWT_SECRET")
	}
	if o.jwtSecret == "" && o.jwksURL == "" {
		return usage("jwt_required", "Min", gatehttp.MinJWTSecret)
	}
	cfg := m.httpConfig()
	if o.jwtSecret != "" {
		cfg.JWTSecret = []byte(o.jwtSecret)
	}
	cfg.JWKSURL, cfg.JWKSRefresh = o.jwksURL, o.jwksRefresh
	cfg.RateLimit, cfg.RateBurst = o.rateLimit, o.rateBurst
	if cfg.RateBurst == 0 {
		cfg.RateBurst = int(2 * o.rateLimit)
	}
	cfg.JWTIssuer = o.jwtIssuer
	cfg.JWTAudience = o.jwtAudience
	cfg.TrustUnverifiedEmail = o.trustUnverifiedEmail
	cfg.AuthZENAuth = o.authzenAuth
	cfg.AuthZENTokens = o.authzenTokens
	if len(cfg.AuthZENTokens) == 0 {
		for t := range strings.SplitSeq(os.Getenv("GATEHOUSE_AUTHZEN_TOKENS"), ",") {
			if t = strings.TrimSpace(t); t != "" {
				cfg.AuthZENTokens = append(cfg.AuthZENTokens, t)
			}
		}
	}
	cfg.TLSCertFile, cfg.TLSKeyFile = o.tlsCert, o.tlsKey
	cfg.BaseURL = o.baseURL
	cfg.TrustedProxies = o.trustedProxies
	cfg.AllowEmpty = o.allowEmpty
	cfg.MaxApplyBytes = o.maxApplyBytes
	if m.svc.Version() == 0 && !o.allowEmpty {
		cfg.Logger.Warn("no policy has been applied: /readyz answers 503 until one is (gatehouse apply -f FILE, or POST /api/v1/policy:apply as the bootstrap superuser); --allow-empty reports ready anyway")
	}
	key, err := m.loadAuditKey()
	if err != nil {
		return err
	}
	m.auditKey = key
	if m.auditKey != nil && o.checkpointEvery <= 0 {
		return usage("positive", "Flag", "--audit-checkpoint-interval")
	}
	if o.retention < 0 {
		return usage("not_negative", "Flag", "--decision-log-retention")
	}
	if err := m.loadBilling(ctx, &cfg); err != nil {
		return err
	}
	stopMCP, err := m.loadMCP(ctx, &cfg, o.mcpConfig, nil)
	if err != nil {
		return err
	}
	defer stopMCP()
	stopChat, err := m.loadChat(&cfg, o.chatModel, o.chatScript, o.chatTools, o.chatListOthers)
	if err != nil {
		return err
	}
	defer stopChat()
	if err := m.loadWeb(&cfg, nil); err != nil {
		return err
	}
	return m.serve(ctx, cfg, func(url string) {
		fmt.Fprintf(m.Stdout, "gatehouse: serving %s (store %s); AuthZEN metadata at %s/.well-known/authzen-configuration\n",
			url, m.Config.storeName(), url)
	})
}

// httpConfig is the server configuration both serve and demo start from.
func (m *Main) httpConfig() gatehttp.Config {
	cfg := gatehttp.DefaultConfig()
	cfg.Addr = m.opts.addr
	cfg.Catalog = m.catalog
	cfg.Logger = slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return cfg
}

// serve runs the HTTP server on m's service until ctx is done, then shuts
// it down gracefully. It calls ready with the server's URL once it listens.
// Meanwhile it reloads the policy every --reload-interval, so changes made
// by the CLI in another process take effect.
func (m *Main) serve(ctx context.Context, cfg gatehttp.Config, ready func(url string)) error {
	if m.opts.reloadEvery <= 0 {
		return usage("positive", "Flag", "--reload-interval")
	}
	if m.auditKey != nil {
		cctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); m.checkpointer(cctx, m.auditKey, m.opts.checkpointEvery, cfg.Logger) }()
		// Registered before the decision log's Close, so it runs after it:
		// the shutdown checkpoint covers the last decisions.
		defer func() {
			stop()
			<-done
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			m.signCheckpoint(ctx, m.auditKey, audit.CheckpointShutdown, cfg.Logger)
		}()
	}
	if m.opts.retention > 0 {
		pctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); m.pruner(pctx, m.opts.retention, m.auditKey, cfg.Logger) }()
		defer func() { stop(); <-done }()
	}
	if m.opts.decisionLog {
		cfg.Decisions = m.svc.DecisionLog(service.DefaultDecisionLogConfig())
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := cfg.Decisions.Close(ctx); err != nil {
				cfg.Logger.Warn("decision log: not every queued decision was recorded", "err", err)
			}
		}()
	}
	srv := gatehttp.NewServer(m.svc, cfg)
	if err := srv.Open(ctx); err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return usage("addr_in_use", "Addr", cfg.Addr)
		}
		if gatehouse.ErrorCode(err) == gatehouse.CodeInvalid {
			return err
		}
		// A bad address or a port this user may not bind.
		return usageErrorf("%v", err)
	}
	ready(srv.URL())
	defer m.sweepBilling(ctx, cfg)()
	// Follow changes other processes commit: PostgreSQL announces them,
	// SQLite is polled every --reload-interval.
	err := m.svc.Follow(ctx, m.opts.reloadEvery,
		func(v int64) { cfg.Logger.Info("policy reloaded", "version", v) },
		func(err error) { cfg.Logger.Warn("policy reload failed; deciding from the last snapshot", "err", err) })
	cfg.Logger.Info("shutting down", "reason", err)
	return srv.Close()
}

// parseProxy reads a --trusted-proxy value: a CIDR prefix or one address.
func parseProxy(v string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(v); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an address nor a CIDR prefix", v)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
