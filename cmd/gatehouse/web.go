package main

import (
	"crypto/rand"
	"flag"
	"os"
	"strings"
	"time"

	gatehttp "github.com/gatehouse/gatehouse/http"
	"github.com/gatehouse/gatehouse/web"
)

func webFlags(fs *flag.FlagSet, o *options) {
	fs.BoolVar(&o.web, "web", true, "serve the dashboard and chat UI at / (see docs/web.md)")
	fs.DurationVar(&o.webSessionTTL, "web-session-ttl", 8*time.Hour, "how long a browser session lasts after sign-in")
	fs.StringVar(&o.oidcIssuer, "oidc-issuer", "", "OpenID Connect issuer URL: the sign-in page offers its login (authorization code with PKCE)")
	fs.StringVar(&o.oidcName, "oidc-name", "", `the provider's name on the sign-in page ("Sign in with NAME"); the issuer's host if empty`)
	fs.StringVar(&o.oidcClientID, "oidc-client-id", "", "the OIDC client id registered for Gatehouse")
	fs.StringVar(&o.oidcClientSecret, "oidc-client-secret", "", "the OIDC client secret (env GATEHOUSE_OIDC_CLIENT_SECRET; or --oidc-client-secret-file)")
	fs.StringVar(&o.oidcSecretFile, "oidc-client-secret-file", "", "file holding the OIDC client secret")
	fs.StringVar(&o.oidcRedirectURL, "oidc-redirect-url", "", "the callback URL registered with the provider, e.g. https://gatehouse.example/signin/oidc/callback")
	fs.StringVar(&o.oidcScopes, "oidc-scopes", "email", "comma-separated scopes requested besides openid")
}

// oidcConfig is the OIDC sign-in the flags ask for, nil without --oidc-issuer.
func (o *options) oidcConfig() (*web.OIDCConfig, error) {
	if o.oidcIssuer == "" {
		if o.oidcClientID != "" || o.oidcRedirectURL != "" {
			return nil, usage("needs", "Flag", "--oidc-client-id, --oidc-redirect-url", "Other", "--oidc-issuer")
		}
		return nil, nil
	}
	secret := o.oidcClientSecret
	if o.oidcSecretFile != "" {
		if secret != "" {
			return nil, usage("not_both", "Flag", "--oidc-client-secret", "Other", "--oidc-client-secret-file")
		}
		b, err := os.ReadFile(o.oidcSecretFile)
		if err != nil {
			return nil, usage("bad_value", "Flag", "--oidc-client-secret-file", "Detail", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	if secret == "" {
		secret = os.Getenv("GATEHOUSE_OIDC_CLIENT_SECRET")
	}
	c := &web.OIDCConfig{Issuer: o.oidcIssuer, Name: o.oidcName, ClientID: o.oidcClientID, ClientSecret: secret,
		RedirectURL: o.oidcRedirectURL}
	for s := range strings.SplitSeq(o.oidcScopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.Scopes = append(c.Scopes, s)
		}
	}
	if err := c.Validate(); err != nil {
		return nil, usageErrorf("%v", err)
	}
	return c, nil
}

// loadWeb puts the browser UI in front of cfg's API, offering demo on its
// sign-in page and OIDC sign-in when configured; without --web it does
// nothing. An OIDC session's API token is signed with the JWT secret, or,
// without one, with a random secret of this process (sessions live per
// process anyway).
func (m *Main) loadWeb(cfg *gatehttp.Config, demo []web.DemoUser) error {
	if !m.opts.web {
		return nil
	}
	wc := web.DefaultConfig()
	wc.Catalog, wc.Logger, wc.DemoUsers = m.catalog, cfg.Logger, demo
	wc.SessionTTL = m.opts.webSessionTTL
	oidc, err := m.opts.oidcConfig()
	if err != nil {
		return err
	}
	if oidc != nil {
		if len(cfg.JWTSecret) == 0 {
			cfg.JWTSecret = []byte(rand.Text() + rand.Text())
		}
		wc.OIDC = oidc
		wc.IssueToken = func(subject string, ttl time.Duration) (string, error) {
			return gatehttp.IssueToken(*cfg, subject, ttl)
		}
	}
	ui, err := web.New(wc)
	if err != nil {
		return usageErrorf("%v", err)
	}
	cfg.Web = ui.Wrap
	return nil
}
