package locale

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

func newCatalog(t *testing.T) *Catalog {
	t.Helper()
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Every catalog has exactly the English ids, each with the same placeholders.
func TestCatalogsComplete(t *testing.T) {
	placeholder := regexp.MustCompile(`{{\s*\.(\w+)\s*}}`)
	load := func(lang string) map[string]string {
		data, err := fs.ReadFile(messageFiles, "messages/"+lang+".json")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("%s: %v", lang, err)
		}
		return m
	}
	names := func(s string) []string {
		var out []string
		for _, m := range placeholder.FindAllStringSubmatch(s, -1) {
			out = append(out, m[1])
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	en := load("en")
	for _, lang := range Languages[1:] {
		msgs := load(lang)
		for id, text := range en {
			got, ok := msgs[id]
			if !ok {
				t.Errorf("%s: message %q missing", lang, id)
				continue
			}
			if got == text && lang != "en" && len(text) > 12 {
				t.Errorf("%s: message %q is not translated: %q", lang, id, got)
			}
			if !slices.Equal(names(got), names(text)) {
				t.Errorf("%s: message %q placeholders %v, want %v", lang, id, names(got), names(text))
			}
		}
		for id := range msgs {
			if _, ok := en[id]; !ok {
				t.Errorf("%s: message %q is not in en", lang, id)
			}
		}
	}
}

// Every reason code and every error code has a message.
func TestEveryCodeHasMessage(t *testing.T) {
	c := newCatalog(t)
	ids := c.IDs()
	for _, r := range gatehouse.Reasons {
		if !slices.Contains(ids, "reason."+string(r)) {
			t.Errorf("reason %q has no message", r)
		}
	}
	for _, code := range []string{gatehouse.CodeInvalid, gatehouse.CodeNotFound, gatehouse.CodeConflict,
		gatehouse.CodeLastSuperuser, gatehouse.CodeUnavailable, gatehouse.CodeCorrupt,
		gatehouse.CodeSchemaTooNew, gatehouse.CodeNotEmpty, gatehouse.CodeInternal,
		gatehouse.CodeIllegalTransition, gatehouse.CodeActionExpired, gatehouse.CodeNotApprover} {
		if !slices.Contains(ids, "error."+code) {
			t.Errorf("error code %q has no message", code)
		}
	}
}

func TestMatch(t *testing.T) {
	c := newCatalog(t)
	tests := []struct{ in, want string }{
		{"", "en"},
		{"de-CH,de;q=0.9,en;q=0.8", "de"},
		{"fr_FR.UTF-8", "fr"},
		{"zh-Hans-CN", "zh"},
		{"it", "it"},
		{"es-419", "es"},
		{"ja, ko", "en"},
		{"*", "en"},
		{"garbage;;q=x", "en"},
		// The POSIX locales are English, and pass over no language listed
		// after them.
		{"C", "en"},
		{"C.UTF-8", "en"},
		{"POSIX", "en"},
	}
	for _, tt := range tests {
		if got := c.Match(tt.in); got != tt.want {
			t.Errorf("Match(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := c.Match("C", "de"); got != "en" {
		t.Errorf(`Match("C", "de") = %q, want "en"`, got)
	}
}

// Every reason renders in every language without template residue.
func TestReasonRendersEverywhere(t *testing.T) {
	c := newCatalog(t)
	a := Args{Subject: "user:alice@example.com", Permission: "use_ai_loan_tool", Tenant: "acme",
		Action: "process_refund", Limit: "max_amount", Scope: "globex", SubjectType: "identity"}
	for _, lang := range Languages {
		for _, r := range gatehouse.Reasons {
			d := gatehouse.Decision{Reason: r, Plan: "pro", Feature: "advanced_analytics"}
			msg := c.Reason(lang, d, a)
			if msg == "" || msg == "reason."+string(r) {
				t.Errorf("Reason(%s, %s) = %q", lang, r, msg)
			}
			if regexp.MustCompile(`{{|<no value>`).MatchString(msg) {
				t.Errorf("Reason(%s, %s) = %q has an unfilled placeholder", lang, r, msg)
			}
		}
	}
}

func TestPlanRequiredNamesPlan(t *testing.T) {
	c := newCatalog(t)
	d := gatehouse.Decision{Reason: gatehouse.ReasonPlanRequired, Plan: "pro", Feature: "api_access"}
	for _, lang := range Languages {
		msg := c.Reason(lang, d, Args{Permission: "use_api"})
		if !regexp.MustCompile(`\bpro\b`).MatchString(msg) {
			t.Errorf("Reason(%s, plan_required) = %q, want it to name plan pro", lang, msg)
		}
		none := c.Reason(lang, gatehouse.Decision{Reason: gatehouse.ReasonPlanRequired, Feature: "x_feature"}, Args{Permission: "p"})
		if !regexp.MustCompile(`x_feature`).MatchString(none) {
			t.Errorf("Reason(%s, plan_required without plan) = %q, want it to name the feature", lang, none)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	c := newCatalog(t)
	err := fmt.Errorf("demote bob: %w", gatehouse.ErrLastSuperuser)
	if got, want := c.Error("en", err), c.Text("en", "error.last_superuser", nil); got != want {
		t.Errorf("Error(en, last superuser) = %q, want %q", got, want)
	}
	if got := c.Error("de", errors.New("boom")); got != c.Text("de", "error.internal", nil) {
		t.Errorf("Error(de, unwrapped) = %q, want the internal error message", got)
	}
	if got := c.Text("xx", "error.not_found", nil); got != c.Text("en", "error.not_found", nil) {
		t.Errorf("Text(unknown lang) = %q, want English", got)
	}
	if got := c.Text("en", "no.such.id", nil); got != "no.such.id" {
		t.Errorf("Text(unknown id) = %q, want the id", got)
	}
}

// A denial names the permission that is missing, not the tool asked for.
func TestReasonNamesMissingPermission(t *testing.T) {
	c := newCatalog(t)
	d := gatehouse.Decision{Reason: gatehouse.ReasonPermissionMissing, Permission: "use_ai_loan_tool"}
	msg := c.Reason("en", d, Args{Subject: "user:carl@x.io", Permission: "analyze_loan"})
	if !regexp.MustCompile(`use_ai_loan_tool`).MatchString(msg) || regexp.MustCompile(`analyze_loan`).MatchString(msg) {
		t.Errorf("Reason = %q, want it to name use_ai_loan_tool", msg)
	}
}

// Every problem of an invalid_request renders in every language, with the
// values the guard gives, without template residue.
func TestProblemsRenderEverywhere(t *testing.T) {
	c := newCatalog(t)
	values := map[string]string{"Field": "args.amount", "Value": "USD", "Currency": "EUR", "Max": "200",
		"ActionID": "a1", "Tool": "process_refund", "Action": "process_refund", "Detail": "too many decimals"}
	n := 0
	for _, id := range c.IDs() {
		if !strings.HasPrefix(id, "problem.") {
			continue
		}
		n++
		for _, lang := range Languages {
			if msg := c.Text(lang, id, values); msg == id || regexp.MustCompile(`{{|<no value>`).MatchString(msg) {
				t.Errorf("Text(%s, %s) = %q", lang, id, msg)
			}
		}
	}
	if n == 0 {
		t.Error("the catalogs hold no problem messages")
	}
}
