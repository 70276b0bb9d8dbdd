package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Documents are YAML; JSON is YAML too, so one decoder gives line numbers
// for both. The node tree is checked against the target type's json field
// names (unknown keys, wrong types, each with its line), converted to JSON
// values and decoded with encoding/json, so the root types need only json
// tags and `omitzero` keeps nil and empty lists apart.

// maxNodes bounds the work a document can cause, alias expansion included.
const maxNodes = 5_000_000

// maxDepth bounds nesting.
const maxDepth = 64

// position is where a value starts in the input.
type position struct{ line, column int }

// positions maps a value's path ("roles[2].bundles[1]") to its position.
type positions map[string]position

// locate returns the position of path or of its nearest located ancestor.
func (ps positions) locate(path string) position {
	for {
		if p, ok := ps[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			return ps[""]
		}
		path = path[:i]
	}
}

// locateAll fills in File, Line and Column of problems from their paths.
func (ps positions) locateAll(file string, problems []Problem) {
	for i := range problems {
		problems[i].File = file
		if problems[i].Line == 0 {
			pos := ps.locate(problems[i].Path)
			problems[i].Line, problems[i].Column = pos.line, pos.column
		}
	}
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decodeDocument decodes data into v (a pointer) and returns the position of
// every value and the problems found, located in file.
func decodeDocument(file string, data []byte, v any) (positions, []Problem) {
	if !utf8.Valid(data) {
		return nil, []Problem{{File: file, Message: "not valid UTF-8"}}
	}
	if trimmed := bytes.TrimLeft(data, " \t\r\n"); len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') && !json.Valid(data) {
		// Looks like JSON: hold it to JSON's stricter grammar.
		return nil, []Problem{jsonProblem(file, data)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, []Problem{syntaxProblem(file, err)}
	}
	d := &decoder{pos: positions{"": {1, 1}}}
	var value any
	if len(root.Content) > 0 {
		value = d.convert(root.Content[0], reflect.TypeOf(v).Elem(), "", 0)
	}
	d.pos.locateAll(file, d.problems)
	if value == nil {
		return d.pos, d.problems
	}
	// Values with problems were dropped; decode the rest so validation can
	// report the remaining problems in the same run.
	raw, err := json.Marshal(value)
	if err == nil {
		err = json.Unmarshal(raw, v)
	}
	if err != nil {
		return d.pos, append(d.problems, Problem{File: file, Line: 1, Message: err.Error()})
	}
	return d.pos, d.problems
}

func jsonProblem(file string, data []byte) Problem {
	var v any
	err := json.Unmarshal(data, &v)
	p := Problem{File: file, Message: "invalid JSON"}
	if err != nil {
		p.Message = err.Error()
	}
	if se, ok := err.(*json.SyntaxError); ok {
		before := data[:min(int(se.Offset), len(data))]
		p.Line = bytes.Count(before, []byte("\n")) + 1
		p.Column = len(before) - bytes.LastIndexByte(before, '\n')
	}
	return p
}

func syntaxProblem(file string, err error) Problem {
	msg := err.Error()
	if te, ok := err.(*yaml.TypeError); ok {
		msg = strings.Join(te.Errors, "; ")
	}
	p := Problem{File: file, Message: msg}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Message = m[2]
	} else {
		p.Message = strings.TrimPrefix(msg, "yaml: ")
	}
	return p
}

type decoder struct {
	pos      positions
	problems []Problem
	nodes    int
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.problems = append(d.problems, Problem{Line: n.Line, Column: n.Column, Path: path, Message: fmt.Sprintf(format, args...)})
}

// convert checks n against t and returns its JSON value (nil on a problem).
func (d *decoder) convert(n *yaml.Node, t reflect.Type, path string, depth int) any {
	d.nodes++
	if d.nodes > maxNodes || depth > maxDepth {
		if d.nodes == maxNodes+1 || depth == maxDepth+1 {
			d.fail(n, path, "document too large or too deeply nested")
		}
		return nil
	}
	if n.Kind == yaml.AliasNode {
		return d.convert(n.Alias, t, path, depth+1)
	}
	if _, seen := d.pos[path]; !seen || path == "" {
		d.pos[path] = position{n.Line, n.Column}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		return d.object(n, t, path, depth)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "want a list, got %s", describe(n))
			return nil
		}
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			out = append(out, d.convert(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1))
		}
		return out
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "want a mapping, got %s", describe(n))
			return nil
		}
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.fail(k, path, "a key must be a plain string")
				continue
			}
			if _, dup := out[k.Value]; dup {
				d.fail(k, joinPath(path, k.Value), "duplicate key %q", k.Value)
				continue
			}
			out[k.Value] = d.convert(val, t.Elem(), joinPath(path, k.Value), depth+1)
		}
		return out
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a string, got %s", describe(n))
			return nil
		}
		return n.Value
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, path, "want true or false, got %s", describe(n))
			return nil
		}
		return b
	case reflect.Int, reflect.Int64, reflect.Int32:
		var i int64
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
			d.fail(n, path, "want an integer, got %s", describe(n))
			return nil
		}
		return i
	case reflect.Interface:
		return d.anyValue(n, path, depth)
	}
	d.fail(n, path, "unsupported value")
	return nil
}

func (d *decoder) object(n *yaml.Node, t reflect.Type, path string, depth int) any {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping, got %s", describe(n))
		return nil
	}
	fields := jsonFields(t)
	out := make(map[string]any, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if _, dup := out[k.Value]; dup {
			d.fail(k, joinPath(path, k.Value), "duplicate key %q", k.Value)
			continue
		}
		ft, ok := fields[k.Value]
		if k.Kind != yaml.ScalarNode || !ok {
			d.fail(k, joinPath(path, k.Value), "unknown key %q%s", k.Value, suggest(k.Value, fields))
			continue
		}
		out[k.Value] = d.convert(val, ft, joinPath(path, k.Value), depth+1)
	}
	return out
}

// anyValue converts free-form values (attributes) to JSON values.
func (d *decoder) anyValue(n *yaml.Node, path string, depth int) any {
	switch n.Kind {
	case yaml.MappingNode:
		return d.convert(n, reflect.TypeOf(map[string]any{}), path, depth)
	case yaml.SequenceNode:
		return d.convert(n, reflect.TypeOf([]any{}), path, depth)
	case yaml.AliasNode:
		return d.anyValue(n.Alias, path, depth+1)
	}
	switch n.Tag {
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b
		}
	case "!!int":
		var i int64
		if n.Decode(&i) == nil {
			return i
		}
	case "!!float":
		var f float64
		if n.Decode(&f) == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f
		}
		d.fail(n, path, "number %s cannot be represented", n.Value)
		return nil
	}
	return n.Value
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// jsonFields maps a struct's JSON field names to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// suggest names a known key close to a mistyped one.
func suggest(key string, fields map[string]reflect.Type) string {
	best, bestDist := "", 3
	for name := range fields {
		if dist := editDistance(strings.ToLower(key), name); dist < bestDist || (dist == bestDist && best != "" && name < best) {
			best, bestDist = name, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
