package guard

import (
	"github.com/gatehouse/gatehouse/locale"
)

// Message returns the reason of r, the answer to req, as a sentence in
// lang: which action is disabled in which tenant, which limit was exceeded
// with its figures, or the message of steps 1–5's decision.
func Message(c *locale.Catalog, lang string, req *Request, r Result) string {
	a := locale.Args{Subject: req.Subject.String(), Permission: req.Tool, Tenant: req.Tenant, Action: r.Action}
	if l := r.Limit; l != nil {
		unit := func(v string) string {
			if l.Currency == "" || v == "" {
				return v
			}
			return v + " " + l.Currency
		}
		used := l.Used
		if l.Limit != "max_count" {
			used = unit(used)
		}
		a.Limit = c.Text(lang, "limit."+l.Limit, map[string]string{
			"Requested": unit(l.Requested), "Max": unit(l.Max), "Used": used, "Window": l.Window,
		})
	}
	d := r.Decision
	d.Reason = r.Reason
	return c.Reason(lang, d, a)
}
