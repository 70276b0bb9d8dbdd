package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestOIDCFlags(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("from-the-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := options{oidcIssuer: "https://id.example", oidcClientID: "gh", oidcRedirectURL: "https://gh.example/signin/oidc/callback",
		oidcScopes: "email, profile"}
	o := base
	o.oidcSecretFile = secretFile
	c, err := o.oidcConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientSecret != "from-the-file" || !slices.Equal(c.Scopes, []string{"email", "profile"}) {
		t.Errorf("oidcConfig() = secret %q scopes %q, want the file's secret and email, profile", c.ClientSecret, c.Scopes)
	}
	t.Setenv("GATEHOUSE_OIDC_CLIENT_SECRET", "from-the-env")
	if c, err := base.oidcConfig(); err != nil || c.ClientSecret != "from-the-env" {
		t.Errorf("oidcConfig() without a flag = %+v, %v; want the environment's secret", c, err)
	}
	if c, err := (&options{}).oidcConfig(); c != nil || err != nil {
		t.Errorf("oidcConfig() without --oidc-issuer = %+v, %v; want none", c, err)
	}
	for _, tc := range []struct {
		name string
		edit func(o *options)
	}{
		{"client id without issuer", func(o *options) { o.oidcIssuer = "" }},
		{"no redirect URL", func(o *options) { o.oidcRedirectURL = "" }},
		{"secret twice", func(o *options) { o.oidcClientSecret, o.oidcSecretFile = "x", secretFile }},
		{"missing secret file", func(o *options) { o.oidcSecretFile = filepath.Join(t.TempDir(), "none") }},
	} {
		o := base
		tc.edit(&o)
		if _, err := o.oidcConfig(); !errors.Is(err, errUsage) {
			t.Errorf("%s: oidcConfig() = %v, want a usage error", tc.name, err)
		}
	}
}
