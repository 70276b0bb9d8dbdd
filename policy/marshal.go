package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse"
	"go.yaml.in/yaml/v3"
)

// fullDocument is gatehouse.Policy with every section always written, so an
// export applied to another store replaces all of it (see Merge).
type fullDocument struct {
	Settings    gatehouse.Settings        `json:"settings"`
	Permissions []gatehouse.Permission    `json:"permissions"`
	Bundles     []gatehouse.Bundle        `json:"bundles"`
	Categories  []gatehouse.Category      `json:"categories"`
	Roles       []gatehouse.Role          `json:"roles"`
	Plans       []gatehouse.Plan          `json:"plans"`
	Tenants     []gatehouse.Tenant        `json:"tenants"`
	Users       []gatehouse.UserEntry     `json:"users"`
	Agents      []gatehouse.Agent         `json:"agents"`
	Tools       []gatehouse.Tool          `json:"tools"`
	Actions     []gatehouse.ActionType    `json:"actions"`
	Resources   []gatehouse.ResourceEntry `json:"resources"`
}

// Marshal writes p as a complete document in format "yaml" or "json": every
// section is present, empty ones as [], so applying the export anywhere
// reproduces p exactly. The output is deterministic — objects sorted by id
// within a section, plans in tier order — and parses back to an equal policy.
func Marshal(p *gatehouse.Policy, format string) ([]byte, error) {
	objs, err := p.Objects()
	if err != nil {
		return nil, err
	}
	canonical, err := gatehouse.PolicyFromObjects(objs)
	if err != nil {
		return nil, err
	}
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	// Conditions compare with < and >; keep them readable.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(full(canonical)); err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	switch format {
	case "json":
		return js.Bytes(), nil
	case "yaml":
	default:
		return nil, gatehouse.Invalidf("unknown format %q, want yaml or json", format)
	}
	// Re-encode the JSON's node tree in block style, keeping field order.
	root, problem := jsonTree("", js.Bytes())
	if problem != nil {
		return nil, fmt.Errorf("convert policy to YAML: %s", problem.Message)
	}
	quoteYAML11(root)
	var buf bytes.Buffer
	ye := yaml.NewEncoder(&buf)
	ye.SetIndent(2)
	if err := ye.Encode(root); err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	if err := ye.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// yaml11Words are plain strings in YAML 1.2 but booleans to YAML 1.1
// readers such as PyYAML.
var yaml11Words = map[string]bool{"y": true, "n": true, "yes": true, "no": true, "on": true, "off": true}

// quoteYAML11 double-quotes the strings a YAML 1.1 reader would take for
// booleans, so exports read the same in every tool.
func quoteYAML11(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.Tag == tagStr && yaml11Words[strings.ToLower(n.Value)] {
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		quoteYAML11(c)
	}
}

func full(p *gatehouse.Policy) fullDocument {
	d := fullDocument(*p)
	d.Permissions = nonNil(d.Permissions)
	d.Bundles = nonNil(d.Bundles)
	d.Categories = nonNil(d.Categories)
	d.Roles = nonNil(d.Roles)
	d.Plans = nonNil(d.Plans)
	d.Tenants = nonNil(d.Tenants)
	d.Users = nonNil(d.Users)
	d.Agents = nonNil(d.Agents)
	d.Tools = nonNil(d.Tools)
	d.Actions = nonNil(d.Actions)
	d.Resources = nonNil(d.Resources)
	return d
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
