package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse"
)

func runAPIKeyCreate(ctx context.Context, m *Main) error {
	if m.opts.subject == "" || m.opts.scopes == "" {
		return usage("required_both", "Flag", "--subject", "Other", "--scopes")
	}
	subject, err := gatehouse.ParseSubject(m.opts.subject)
	if err != nil {
		return usage("bad_value", "Flag", "--subject", "Detail", err)
	}
	var scopes []string
	for s := range strings.SplitSeq(m.opts.scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			scopes = append(scopes, s)
		}
	}
	token, k, err := m.svc.IssueAPIKey(ctx, m.Config.Actor, m.args[0], subject, scopes, m.opts.ttl)
	if err != nil {
		return err
	}
	if m.opts.jsonOut {
		return writeJSON(m, struct {
			Token string           `json:"token"`
			Key   gatehouse.APIKey `json:"key"`
		}{token, k})
	}
	fmt.Fprintf(m.Stdout, "API key %s for %s (%s); store the token now, it is not shown again:\n%s\n",
		k.ID, k.Subject, strings.Join(k.Scopes, ","), token)
	return nil
}

func runAPIKeyList(ctx context.Context, m *Main) error {
	keys, err := m.svc.APIKeys(ctx)
	if err != nil {
		return err
	}
	if m.opts.jsonOut {
		return writeJSON(m, keys)
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tSUBJECT\tSCOPES\tSTATUS")
	now := time.Now()
	for _, k := range keys {
		status := "active"
		switch {
		case !k.RevokedAt.IsZero():
			status = "revoked " + k.RevokedAt.Format(time.RFC3339)
		case !k.ActiveAt(now):
			status = "expired " + k.ExpiresAt.Format(time.RFC3339)
		case !k.ExpiresAt.IsZero():
			status = "expires " + k.ExpiresAt.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Subject, strings.Join(k.Scopes, ","), status)
	}
	return w.Flush()
}
