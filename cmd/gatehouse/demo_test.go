package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/locale"
)

// shellWords splits a line as sh would for the quoting the demo prints:
// single quotes are literal, double quotes and bare words expand $VAR.
func shellWords(t *testing.T, line string, env map[string]string) []string {
	t.Helper()
	expand := regexp.MustCompile(`\$([A-Z_]+)`)
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; c {
		case ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case '\'', '"':
			end := strings.IndexByte(line[i+1:], c)
			if end < 0 {
				t.Fatalf("unterminated %c in %s", c, line)
			}
			s := line[i+1 : i+1+end]
			if c == '"' {
				s = expand.ReplaceAllStringFunc(s, func(v string) string { return env[v[1:]] })
			}
			cur.WriteString(s)
			inWord = true
			i += end + 1
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// curlRequest turns the words of a printed curl command into a request and
// the client curl would use: one that trusts --cacert, if given.
func curlRequest(t *testing.T, words []string) (*http.Request, *http.Client) {
	t.Helper()
	if words[0] != "curl" {
		t.Fatalf("not a curl command: %q", words)
	}
	client := http.DefaultClient
	var url, body, method string
	header := http.Header{}
	for i := 1; i < len(words); i++ {
		switch w := words[i]; {
		case w == "-sS":
		case w == "-X":
			i++
			method = words[i]
		case w == "-H":
			i++
			k, v, _ := strings.Cut(words[i], ":")
			header.Set(k, strings.TrimSpace(v))
		case w == "-d":
			i++
			body = words[i]
		case w == "--cacert":
			i++
			pemBytes, err := os.ReadFile(words[i])
			if err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pemBytes) {
				t.Fatalf("--cacert %s holds no certificate", words[i])
			}
			client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
			t.Cleanup(client.CloseIdleConnections)
		case strings.HasPrefix(w, "http://"), strings.HasPrefix(w, "https://"):
			url = w
		default:
			t.Fatalf("unexpected curl argument %q in %q", w, words)
		}
	}
	if method == "" && body != "" {
		method = http.MethodPost
	} else if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	return req, client
}

// demoAnswer is any of the demo's JSON answers.
type demoAnswer struct {
	Decision *bool `json:"decision"`
	Context  struct {
		Reason        string `json:"reason"`
		DeniedSubject string `json:"denied_subject"`
	} `json:"context"`
	Evaluations []struct {
		Decision bool `json:"decision"`
		Context  struct {
			Reason string `json:"reason"`
		} `json:"context"`
	} `json:"evaluations"`
	Allowed *bool                   `json:"allowed"`
	Reason  string                  `json:"reason"`
	Message string                  `json:"message"`
	Steps   []gatehouse.ExplainStep `json:"steps"`
	Flags   map[string]bool         `json:"flags"`
	PDP     string                  `json:"policy_decision_point"`
	Results []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"results"`
}

// summarize reduces an answer to what the test compares: decisions and
// reason codes, never messages.
func summarize(status int, contentType string, body []byte) string {
	if strings.HasPrefix(contentType, "application/yaml") {
		return fmt.Sprintf("%d yaml users=%d", status, strings.Count(string(body), "- email:"))
	}
	var rows []struct {
		Action               string `json:"action_type"`
		Enabled              bool   `json:"enabled"`
		RequiresConfirmation bool   `json:"requires_confirmation"`
	}
	if json.Unmarshal(body, &rows) == nil {
		var parts []string
		for _, r := range rows {
			parts = append(parts, fmt.Sprintf("%s=%t/%t", r.Action, r.Enabled, r.RequiresConfirmation))
		}
		return fmt.Sprintf("%d enabled/confirmation %s", status, strings.Join(parts, " "))
	}
	var a demoAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return fmt.Sprintf("%d not JSON: %v", status, err)
	}
	switch {
	case a.Decision != nil:
		return fmt.Sprintf("%d %t %s %s", status, *a.Decision, a.Context.Reason, a.Context.DeniedSubject)
	case a.Evaluations != nil:
		var parts []string
		for _, e := range a.Evaluations {
			parts = append(parts, fmt.Sprintf("%t %s", e.Decision, e.Context.Reason))
		}
		return fmt.Sprintf("%d [%s]", status, strings.Join(parts, ", "))
	case a.Allowed != nil:
		return fmt.Sprintf("%d %t %s explained=%t", status, *a.Allowed, a.Reason, len(a.Steps) > 0)
	case a.Flags != nil:
		return fmt.Sprintf("%d canUseLoanTool=%t canUseReports=%t", status, a.Flags["canUseLoanTool"], a.Flags["canUseReports"])
	case a.PDP != "":
		return fmt.Sprintf("%d pdp=%s", status, a.PDP)
	case a.Results != nil:
		var ids []string
		for _, r := range a.Results {
			ids = append(ids, r.ID+r.Name)
		}
		return fmt.Sprintf("%d results=%s", status, strings.Join(ids, ","))
	}
	return fmt.Sprintf("%d %s", status, body)
}

// TestDemo starts the demo in-process and runs every curl command it
// prints, as printed, against it.
func TestDemo(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "demo")
	r := start(t, "unused.db", "demo", "--dir", dir, "--addr", "127.0.0.1:0", "--reload-interval", "20ms")
	out := r.waitFor(t, "Press Ctrl-C")
	base := regexp.MustCompile(`server\s+(http://\S+)`).FindStringSubmatch(out)[1]

	env := map[string]string{}
	var curls, walkthrough []string
	for _, line := range strings.Split(out, "\n") {
		if m := regexp.MustCompile(`^export ([A-Z]+)='([^']+)'$`).FindStringSubmatch(line); m != nil {
			env[m[1]] = m[2]
		}
		switch {
		case strings.HasPrefix(line, "ACTION=$(curl "), strings.HasPrefix(line, "curl ") && strings.Contains(line, "$ACTION"):
			walkthrough = append(walkthrough, line)
		case strings.HasPrefix(line, "curl "):
			curls = append(curls, line)
		}
	}
	for _, u := range demoUsers {
		if env[u.Var] == "" {
			t.Errorf("the demo prints no token for %s", u.Email)
		}
	}
	for _, a := range demoAgents {
		if env[a.Var] == "" {
			t.Errorf("the demo prints no token for agent %s", a.ID)
		}
	}
	// The web UI's sign-in page offers every demo user, never a token.
	res, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || res.Request.URL.Path != "/signin" {
		t.Fatalf("GET / = %d at %s (%v), want the sign-in page", res.StatusCode, res.Request.URL, err)
	}
	for _, u := range demoUsers {
		if !strings.Contains(string(page), `value="user:`+u.Email+`"`) {
			t.Errorf("the sign-in page does not offer %s", u.Email)
		}
		if strings.Contains(string(page), env[u.Var]) {
			t.Errorf("the sign-in page shows the token of %s", u.Email)
		}
	}
	want := []string{
		"200 true granted ",
		"200 false permission_missing ",
		"200 [true granted, false plan_required, false tenant_not_visible]",
		"200 false permission_missing user:carl@acme.example",
		"200 false limit_exceeded ",
		"200 false confirmation_required ",
		"200 results=acme,acme-berlin,acme-milan",
		"200 results=access_ai_chat,chat.view,chat.write,customer_insights,fetch_account,fetch_conversation,fetch_customer,use_ai_analysis,use_ai_customer_insights",
		"200 canUseLoanTool=true canUseReports=false",
		"200 false plan_required explained=true",
		"200 enabled/confirmation apply_discount=true/true cancel_order=true/true initiate_return=false/true lookup_order=true/false " +
			"process_refund=true/true send_tracking=true/false update_address=false/true",
		"200 pdp=" + base,
		"200 yaml users=7",
	}
	if len(curls) != len(want) {
		t.Fatalf("the demo prints %d curl commands, want %d:\n%s", len(curls), len(want), out)
	}
	do := func(line string) (string, *http.Response, []byte) {
		req, client := curlRequest(t, shellWords(t, line, env))
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return summarize(res.StatusCode, res.Header.Get("Content-Type"), body), res, body
	}
	for i, line := range curls {
		got, _, body := do(line)
		if got != want[i] {
			t.Errorf("command %d = %q, want %q\n%s\n%s", i+1, got, want[i], line, body)
		}
	}
	// Command 10 asks in German.
	_, _, body := do(curls[9])
	var a demoAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatal(err)
	}
	cat, err := locale.New()
	if err != nil {
		t.Fatal(err)
	}
	if de := cat.Reason("de", gatehouse.Decision{Reason: gatehouse.ReasonPlanRequired, Plan: "pro"}, locale.Args{Permission: "Fraud detection"}); a.Message != de {
		t.Errorf("command 10 message %q, want the German %q", a.Message, de)
	}

	t.Run("agent action walkthrough", func(t *testing.T) { demoWalkthrough(t, walkthrough, env) })

	// The change the demo suggests flips command 2 once the server reloads.
	if !strings.Contains(out, "user promote carl@acme.example --db "+filepath.Join(dir, "gatehouse.db")) {
		t.Errorf("the demo does not suggest the promotion it promises:\n%s", out)
	}
	if res := run(t, filepath.Join(dir, "gatehouse.db"), "user", "promote", "carl@acme.example"); res.code != 0 {
		t.Fatalf("promote: %d %s", res.code, res.stderr)
	}
	eventually(t, "command 2 after promoting carl", func() string {
		if got, _, _ := do(curls[1]); got != "200 true superuser " {
			return got
		}
		return ""
	})
	if err := r.stop(t); err != nil {
		t.Fatalf("demo returned %v after an interrupt", err)
	}

	// A second run reuses the database: the policy is re-applied and the
	// secret is new, so the old tokens stop working.
	r2 := start(t, "unused.db", "demo", "--dir", dir, "--addr", "127.0.0.1:0")
	out2 := r2.waitFor(t, "Press Ctrl-C")
	base2 := regexp.MustCompile(`server\s+(http://\S+)`).FindStringSubmatch(out2)[1]
	if !strings.Contains(out2, "(policy version 3)") {
		t.Errorf("the second run does not re-apply the example (demoting carl again):\n%s", out2)
	}
	if got, _, _ := do(strings.Replace(curls[0], base, base2, 1)); !strings.HasPrefix(got, "401 ") {
		t.Errorf("an old token against the new run = %q, want 401", got)
	}
	if err := r2.stop(t); err != nil {
		t.Fatal(err)
	}

	// --reset starts from a fresh database: the example is version 1 again.
	r3 := start(t, "unused.db", "demo", "--dir", dir, "--addr", "127.0.0.1:0", "--reset")
	if out3 := r3.waitFor(t, "Press Ctrl-C"); !strings.Contains(out3, "(policy version 1)") {
		t.Errorf("demo --reset does not start from a fresh database:\n%s", out3)
	}
	if err := r3.stop(t); err != nil {
		t.Fatal(err)
	}
}

// demoWalkthrough runs the demo's agent action walkthrough, as printed:
// the bot's request is pending, Olga confirms, the bot records the refund
// executed, and the audit trail holds the three steps.
func demoWalkthrough(t *testing.T, lines []string, env map[string]string) {
	if len(lines) != len(demoAction) {
		t.Fatalf("the walkthrough has %d commands, want %d:\n%s", len(lines), len(demoAction), strings.Join(lines, "\n"))
	}
	capture := regexp.MustCompile(`^([A-Z]+)=\$\((curl .*) \| sed -n 's/(.*)/\\1/p'\); echo "\$[A-Z]+"$`)
	var answers []map[string]any
	for i, line := range lines {
		variable := ""
		if m := capture.FindStringSubmatch(line); m != nil {
			variable, line = m[1], m[2]
			// The sed expression, in Go's syntax.
			if want := `.*"action_id":"\([^"]*\)".*`; m[3] != want {
				t.Fatalf("command %c captures with %q, want %q", 'a'+i, m[3], want)
			}
		} else if strings.Contains(line, "=$(") {
			t.Fatalf("command %c: cannot read the capture in %s", 'a'+i, line)
		}
		req, client := curlRequest(t, shellWords(t, line, env))
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var a map[string]any
		if res.StatusCode != http.StatusOK || json.Unmarshal(body, &a) != nil {
			t.Fatalf("command %c: %d %s\n%s", 'a'+i, res.StatusCode, body, line)
		}
		if variable != "" {
			m := regexp.MustCompile(`"action_id":"([^"]*)"`).FindSubmatch(body)
			if m == nil {
				t.Fatalf("command %c: no action_id in %s", 'a'+i, body)
			}
			env[variable] = string(m[1])
		}
		answers = append(answers, a)
	}
	want := []struct{ key, value string }{
		{"reason", "confirmation_required"}, {"status", "pending"}, {"status", "confirmed"}, {"status", "executed"},
	}
	for i, w := range want {
		if answers[i][w.key] != w.value {
			t.Errorf("command %c: %s = %v, want %s", 'a'+i, w.key, answers[i][w.key], w.value)
		}
	}
	if answers[0]["status"] != "pending" || answers[0]["allowed"] != true {
		t.Errorf("the bot's request: %v, want allowed and pending", answers[0])
	}
	var steps []string
	events, _ := answers[4]["events"].([]any)
	for _, e := range events {
		e := e.(map[string]any)
		steps = append(steps, fmt.Sprintf("%s by %s", e["action"], e["actor"]))
	}
	if got, want := strings.Join(steps, ", "), "action.authorize by agent:support-bot, action.confirmed by user:olga@acme.example, "+
		"action.executed by agent:support-bot"; got != want {
		t.Errorf("the audit of the action: %s, want %s", got, want)
	}
}

// With --tls the demo serves HTTPS with a self-signed certificate its curl
// commands trust, and the metadata names the https base URL.
func TestDemoTLS(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "demo")
	r := start(t, "unused.db", "demo", "--dir", dir, "--addr", "127.0.0.1:0", "--tls")
	out := r.waitFor(t, "Press Ctrl-C")
	base := regexp.MustCompile(`server\s+(https://\S+)`).FindStringSubmatch(out)
	if base == nil {
		t.Fatalf("the TLS demo serves no https URL:\n%s", out)
	}
	env := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^export ([A-Z]+)='([^']+)'$`).FindAllStringSubmatch(out, -1) {
		env[m[1]] = m[2]
	}
	for _, line := range strings.Split(out, "\n") {
		// The walkthrough needs its captured id; TestDemo runs it.
		if !strings.HasPrefix(line, "curl ") || strings.Contains(line, "$ACTION") {
			continue
		}
		req, client := curlRequest(t, shellWords(t, line, env))
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", line, res.StatusCode, body)
		}
		if strings.HasSuffix(req.URL.Path, "authzen-configuration") && summarize(res.StatusCode, "", body) != "200 pdp="+base[1] {
			t.Errorf("metadata over TLS: %s", body)
		}
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestDemoBusyAddress(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	res := run(t, "unused.db", "demo", "--dir", filepath.Join(t.TempDir(), "demo"), "--addr", busy.Addr().String())
	if res.code != exitUsage || !strings.Contains(res.stderr, busy.Addr().String()+" is already in use") || !strings.Contains(res.stderr, "--addr") {
		t.Errorf("demo on a busy address: exit %d, stderr %q", res.code, res.stderr)
	}
}
