package policy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
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

// Marshal writes p as a complete document in format "yaml", "json" or
// "jsonl" (one object per line, see ParseLines): every
// section is present, empty ones as [], so applying the export anywhere
// reproduces p exactly. The output is deterministic — objects sorted by id
// within a section, plans in tier order — and parses back to an equal policy.
func Marshal(p *gatehouse.Policy, format string) ([]byte, error) {
	var buf bytes.Buffer
	if err := Encode(&buf, p, format); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Encode writes Marshal's document to w one object at a time, so that
// exporting a large policy holds one object's encoding in memory, not the
// whole document's. Format "jsonl" writes the JSON-lines form (see
// ParseLines) straight from p, without the canonical copy the other
// formats are written from.
func Encode(w io.Writer, p *gatehouse.Policy, format string) error {
	if format == "jsonl" {
		return encodeLines(w, p)
	}
	if format != "yaml" && format != "json" {
		return gatehouse.Invalidf("unknown format %q, want yaml, json or jsonl", format)
	}
	objs, err := p.Objects()
	if err != nil {
		return err
	}
	canonical, err := gatehouse.PolicyFromObjects(objs)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	e := &docEncoder{w: bw, yaml: format == "yaml"}
	doc := reflect.ValueOf(full(canonical))
	t := doc.Type()
	if !e.yaml {
		bw.WriteString("{")
	}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if err := e.section(i, name, doc.Field(i)); err != nil {
			return fmt.Errorf("encode policy: %w", err)
		}
	}
	if !e.yaml {
		bw.WriteString("\n}\n")
	}
	return bw.Flush()
}

// docEncoder writes the sections of a fullDocument. Each value is encoded
// alone at the indentation the whole document would give it, so the
// output is byte for byte what encoding the document in one piece writes.
type docEncoder struct {
	w    *bufio.Writer
	yaml bool
	buf  bytes.Buffer
}

// section writes the i-th section, key name, holding v: the settings
// object or a list of objects.
func (e *docEncoder) section(i int, name string, v reflect.Value) error {
	if e.yaml {
		return e.yamlSection(name, v)
	}
	if i > 0 {
		e.w.WriteString(",")
	}
	fmt.Fprintf(e.w, "\n  %q: ", name)
	if v.Kind() != reflect.Slice {
		return e.json(v.Interface(), "  ")
	}
	if v.Len() == 0 {
		e.w.WriteString("[]")
		return nil
	}
	e.w.WriteString("[")
	for j := range v.Len() {
		if j > 0 {
			e.w.WriteString(",")
		}
		e.w.WriteString("\n    ")
		if err := e.json(v.Index(j).Interface(), "    "); err != nil {
			return err
		}
	}
	e.w.WriteString("\n  ]")
	return nil
}

// json writes v indented as it stands at prefix.
func (e *docEncoder) json(v any, prefix string) error {
	e.buf.Reset()
	enc := json.NewEncoder(&e.buf)
	// Conditions compare with < and >; keep them readable.
	enc.SetEscapeHTML(false)
	enc.SetIndent(prefix, "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	e.w.Write(bytes.TrimSuffix(e.buf.Bytes(), []byte("\n")))
	return nil
}

// yamlSection writes a section in block style: the settings mapping, or
// each list entry as a one-entry list, indented under the key.
func (e *docEncoder) yamlSection(name string, v reflect.Value) error {
	if v.Kind() != reflect.Slice {
		return e.yamlValue(name+":", v.Interface(), false)
	}
	if v.Len() == 0 {
		fmt.Fprintf(e.w, "%s: []\n", name)
		return nil
	}
	fmt.Fprintf(e.w, "%s:\n", name)
	for j := range v.Len() {
		if err := e.yamlValue("", v.Index(j).Interface(), true); err != nil {
			return err
		}
	}
	return nil
}

// yamlValue writes v as YAML indented by two spaces under head (a "key:"
// line, if not empty); as a list entry when entry is set. The value's
// JSON node tree is re-encoded, keeping json field order and names.
func (e *docEncoder) yamlValue(head string, v any, entry bool) error {
	e.buf.Reset()
	enc := json.NewEncoder(&e.buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	node, problem := jsonTree("", e.buf.Bytes())
	if problem != nil {
		return fmt.Errorf("convert to YAML: %s", problem.Message)
	}
	quoteYAML11(node)
	if !entry && len(node.Content) == 0 {
		// An empty mapping is written in flow style, on the key's line.
		fmt.Fprintf(e.w, "%s {}\n", head)
		return nil
	}
	if entry {
		node = &yaml.Node{Kind: yaml.SequenceNode, Tag: tagSeq, Content: []*yaml.Node{node}}
	}
	var out bytes.Buffer
	ye := yaml.NewEncoder(&out)
	ye.SetIndent(2)
	if err := ye.Encode(node); err != nil {
		return err
	}
	if err := ye.Close(); err != nil {
		return err
	}
	if head != "" {
		e.w.WriteString(head + "\n")
	}
	for line := range bytes.Lines(out.Bytes()) {
		if len(line) > 1 {
			e.w.WriteString("  ")
		}
		e.w.Write(line)
	}
	return nil
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
