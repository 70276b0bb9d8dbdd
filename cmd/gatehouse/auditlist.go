package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

func runAuditList(ctx context.Context, m *Main) error {
	o := m.opts
	if o.limit <= 0 {
		return usage("positive", "Flag", "--limit")
	}
	now := time.Now()
	f := gatehouse.AuditFilter{AfterSeq: o.after, Actor: o.actor, Action: o.action, TargetPrefix: o.target,
		Kind: o.kind, Reason: o.reason, Newest: !o.oldest}
	if f.CheckKind() != nil {
		return usage("bad_value", "Flag", "--kind", "Detail", fmt.Sprintf("%q is neither decision nor change", o.kind))
	}
	var err error
	if o.since != "" {
		if f.Since, err = parseWhen(o.since, now); err != nil {
			return usage("bad_value", "Flag", "--since", "Detail", err)
		}
	}
	if o.before != "" {
		if seq, err := strconv.ParseInt(o.before, 10, 64); err == nil && seq > 0 {
			f.BeforeSeq = seq
		} else if f.Until, err = parseWhen(o.before, now); err != nil {
			return usage("bad_value", "Flag", "--before", "Detail", err)
		}
	}
	// One more than shown tells whether the limit cut the list.
	f.Limit = min(o.limit+1, audit.MaxListLimit)
	events, err := m.svc.ListAudit(ctx, f)
	if err != nil {
		return err
	}
	cut := len(events) > o.limit || (len(events) == audit.MaxListLimit && o.limit >= audit.MaxListLimit)
	events = events[:min(len(events), o.limit)]
	if o.jsonOut {
		enc := json.NewEncoder(m.Stdout)
		for _, e := range events {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
	} else if err := printAuditEvents(m, events); err != nil {
		return err
	}
	if cut && len(events) > 0 {
		next := fmt.Sprintf("--before %d", events[len(events)-1].Seq)
		if o.oldest {
			next = fmt.Sprintf("--after %d", events[len(events)-1].Seq)
		}
		fmt.Fprintln(m.Stderr, m.text("cli.audit.truncated", map[string]any{"Count": len(events), "Next": next}))
	}
	return nil
}

// printAuditEvents prints one line per event; a decision's line says
// whether it allowed, why, and which tool (or permission) was asked.
func printAuditEvents(m *Main, events []gatehouse.AuditEvent) error {
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SEQ\tTIME\tACTOR\tACTION\tTARGET\tALLOWED\tREASON\tTOOL")
	for _, e := range events {
		allowed, reason, tool := "", "", ""
		if e.Action == "decision" {
			var d struct {
				Allowed bool   `json:"allowed"`
				Reason  string `json:"reason"`
				Tool    string `json:"tool"`
				Action  string `json:"action"`
				Tenant  string `json:"tenant"`
			}
			if json.Unmarshal(e.Detail, &d) == nil {
				allowed, reason, tool = strconv.FormatBool(d.Allowed), d.Reason, d.Tool
				if tool == "" {
					tool = d.Action
				}
				if d.Tenant != "" {
					tool += " in " + d.Tenant
				}
			}
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.Format(time.RFC3339), e.Actor, e.Action, e.Target, allowed, reason, tool)
	}
	return w.Flush()
}

// parseWhen reads a point in time: RFC 3339, a date (midnight UTC), or a
// duration before now such as 24h or 90m.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time (2026-12-01T09:00:00Z), a date (2026-12-01) or a positive duration ago (24h)", s)
	}
	return now.Add(-d), nil
}
