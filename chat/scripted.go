package chat

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse"
)

// Scripted is a deterministic Model driven by rules: the first rule whose
// pattern matches the user's newest message answers it, with a reply, tool
// calls, or both; once the tools' results are back, the rule's Then
// answers with them (or, when every call was refused, the refusals). It never needs a network, so the demo and the tests
// run offline, and it calls the tools its rules name whether or not it was
// offered them, as a model that invents a tool would: the loop must refuse
// those.
type Scripted struct {
	rules    []scriptRule
	fallback string
}

// Script is the YAML form of a Scripted model:
//
//	rules:
//	  - match: '(?i)refund (\d+(?:\.\d+)?) (EUR|USD) on order (\d+)'
//	    calls: [{tool: process_refund, args: {amount: "$1", currency: "$2", order_id: "$3"}}]
//	    then: "Done: {result}"
//	  - match: '(?i)what can you do'
//	    reply: "I can use: {tools}."
//	default: "Ask me about a loan or an order."
//
// In args, $1… are the pattern's groups; in replies, {tools} is the
// offered tools' names and {result} the tool results, one a line.
type Script struct {
	Rules   []ScriptRule `yaml:"rules"`
	Default string       `yaml:"default"`
}

// ScriptRule is one rule of a Script.
type ScriptRule struct {
	Match string       `yaml:"match"`
	Reply string       `yaml:"reply"`
	Calls []ScriptCall `yaml:"calls"`
	Then  string       `yaml:"then"`
}

// ScriptCall is a tool call a rule makes.
type ScriptCall struct {
	Tool string         `yaml:"tool"`
	Args map[string]any `yaml:"args"`
}

type scriptRule struct {
	ScriptRule
	re *regexp.Regexp
}

//go:embed script.yaml
var defaultScript []byte

// DefaultScripted returns the scripted model of the demo, which knows the
// example policy's tools (see script.yaml).
func DefaultScripted() *Scripted {
	m, err := ParseScript(defaultScript)
	if err != nil {
		panic("chat: the embedded script is invalid: " + err.Error())
	}
	return m
}

// ParseScript reads a Script.
func ParseScript(data []byte) (*Scripted, error) {
	var s Script
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, gatehouse.Invalidf("chat script: %v", err)
	}
	m := &Scripted{fallback: s.Default}
	for i, r := range s.Rules {
		re, err := regexp.Compile(r.Match)
		if err != nil || r.Match == "" {
			return nil, gatehouse.Invalidf("chat script: rules[%d].match %q: want a regular expression", i, r.Match)
		}
		if r.Reply == "" && len(r.Calls) == 0 {
			return nil, gatehouse.Invalidf("chat script: rules[%d]: a rule needs a reply or calls", i)
		}
		for j, c := range r.Calls {
			if c.Tool == "" {
				return nil, gatehouse.Invalidf("chat script: rules[%d].calls[%d]: a call needs a tool", i, j)
			}
		}
		m.rules = append(m.rules, scriptRule{ScriptRule: r, re: re})
	}
	if m.fallback == "" {
		m.fallback = "…"
	}
	return m, nil
}

// Complete answers the newest user message by the first matching rule,
// or, after tool results, with the rule's Then.
func (m *Scripted) Complete(ctx context.Context, req ModelRequest, onToken func(string)) (Reply, error) {
	if err := ctx.Err(); err != nil {
		return Reply{}, err
	}
	var user string
	var results []string
	afterTools, refused := false, true
	for i := len(req.Messages) - 1; i >= 0; i-- {
		msg := req.Messages[i]
		if msg.Role == gatehouse.RoleUser {
			user = msg.Content
			break
		}
		if msg.Role == gatehouse.RoleTool {
			afterTools = true
			refused = refused && msg.Status == gatehouse.ToolCallDenied
			results = append([]string{msg.Content}, results...)
		}
	}
	names := make([]string, len(req.Tools))
	for i, t := range req.Tools {
		names[i] = t.Name
	}
	fill := func(s string) string {
		s = strings.ReplaceAll(s, "{tools}", strings.Join(names, ", "))
		return strings.ReplaceAll(s, "{result}", strings.Join(results, "\n"))
	}
	var r Reply
	rule, groups := m.match(user)
	switch {
	case rule == nil:
		r.Content = fill(m.fallback)
	case afterTools && refused:
		r.Content = "I could not do that: " + strings.Join(results, "\n")
	case afterTools:
		r.Content = fill(string(rule.re.ExpandString(nil, rule.Then, user, groups)))
		if rule.Then == "" {
			r.Content = strings.Join(results, "\n")
		}
	default:
		r.Content = fill(string(rule.re.ExpandString(nil, rule.Reply, user, groups)))
		for i, c := range rule.Calls {
			args, err := json.Marshal(expand(c.Args, rule.re, user, groups))
			if err != nil {
				return Reply{}, fmt.Errorf("chat script: arguments of %s: %w", c.Tool, err)
			}
			r.ToolCalls = append(r.ToolCalls, gatehouse.ToolCall{ID: fmt.Sprintf("call_%d", i+1), Name: c.Tool, Arguments: args})
		}
	}
	for _, w := range strings.SplitAfter(r.Content, " ") {
		if w != "" {
			onToken(w)
		}
	}
	return r, nil
}

func (m *Scripted) match(text string) (*scriptRule, []int) {
	for i := range m.rules {
		if g := m.rules[i].re.FindStringSubmatchIndex(text); g != nil {
			return &m.rules[i], g
		}
	}
	return nil, nil
}

// expand replaces $1… in the string values of args with the groups of
// the match.
func expand(args map[string]any, re *regexp.Regexp, text string, groups []int) map[string]any {
	out := make(map[string]any, len(args))
	for k, v := range args {
		if s, ok := v.(string); ok {
			v = string(re.ExpandString(nil, s, text, groups))
		}
		out[k] = v
	}
	return out
}
