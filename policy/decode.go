package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse"
)

// Documents are decoded from a yaml.Node tree: YAML directly, JSON through
// jsonTree, so both formats share one decoder, one set of messages and line
// numbers. The decoder walks the tree against the target type's json field
// names (unknown keys, wrong types and duplicate keys each reported at their
// line) and sets the fields itself, so the root types need only json tags:
// an absent or null list stays nil and `[]` becomes an empty, non-nil one,
// as `omitzero` on UserEntry.Tenants requires.

// maxDepth bounds nesting; policies are shallow, attributes rarely deep.
const maxDepth = 64

// position is where a value starts in the input, 1-based.
type position struct{ line, column int }

// positions maps a value's path ("roles[2].bundles[1]") to its position.
type positions map[string]position

// locate returns the position of path or of its nearest located ancestor,
// so a missing required field is reported where its object starts.
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

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decodeDocument decodes data, YAML or JSON, into v (a pointer) and returns
// the position of every value and the problems found, located in file. A
// document that does not parse at all returns nil positions. A document
// whose first character is { or [, or whose file name ends in .json, is
// held to JSON's grammar; other documents are YAML. An empty document
// decodes to v's zero value.
func decodeDocument(file string, data []byte, v any) (positions, []Problem) {
	if !utf8.Valid(data) {
		return nil, []Problem{invalidUTF8(file, data)}
	}
	var root *yaml.Node
	var problem *Problem
	if trimmed := bytes.TrimLeft(data, " \t\r\n"); strings.HasSuffix(strings.ToLower(file), ".json") ||
		len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		root, problem = jsonTree(file, data)
	} else {
		root, problem = yamlTree(file, data)
	}
	if problem != nil {
		return nil, []Problem{*problem}
	}
	d := &decoder{
		file: file,
		pos:  positions{"": {1, 1}},
		// Aliases can make a small document expand enormously; a document
		// without them has fewer values than bytes.
		budget: 16*len(data) + 1024,
	}
	if root != nil {
		d.decode(root, reflect.ValueOf(v).Elem(), "", 0)
	}
	return d.pos, d.problems
}

func invalidUTF8(file string, data []byte) Problem {
	off := 0
	for off < len(data) {
		r, size := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		off += size
	}
	line, col := lineColumn(data, off)
	return Problem{File: file, Line: line, Column: col, Message: "not valid UTF-8"}
}

// lineColumn converts a byte offset into a 1-based line and column.
func lineColumn(data []byte, off int) (line, col int) {
	before := data[:min(off, len(data))]
	line = bytes.Count(before, []byte("\n")) + 1
	col = utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
	return line, col
}

// yamlTree parses exactly one YAML document; it returns nil for an empty one.
func yamlTree(file string, data []byte) (*yaml.Node, *Problem) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		p := yamlProblem(file, err)
		return nil, &p
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		line := 0
		if len(next.Content) > 0 {
			line = next.Content[0].Line
		}
		return nil, &Problem{File: file, Line: line, Message: "more than one YAML document; a policy is one document"}
	case !errors.Is(err, io.EOF):
		p := yamlProblem(file, err)
		return nil, &p
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// yamlProblem turns a YAML syntax error ("yaml: line 3: …") into a problem.
func yamlProblem(file string, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Problem{File: file, Message: msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(num); err == nil {
				p.Line, p.Message = line, text
			}
		}
	}
	return p
}

// jsonTree parses one JSON value into a yaml.Node tree with the position of
// every value, so that JSON documents decode exactly like YAML ones. It
// returns nil for an empty input.
func jsonTree(file string, data []byte) (*yaml.Node, *Problem) {
	b := &jsonBuilder{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	b.dec.UseNumber()
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	root, err := b.value()
	if err == nil {
		off := b.start()
		if _, err = b.dec.Token(); err == nil {
			line, col := lineColumn(data, off)
			return nil, &Problem{File: file, Line: line, Column: col, Message: "unexpected data after the top-level value"}
		}
		if errors.Is(err, io.EOF) {
			return root, nil
		}
	}
	return nil, b.problem(file, err)
}

type jsonBuilder struct {
	data []byte
	dec  *json.Decoder
	// at is the position of the last node: tokens come in order, so each
	// node's line and column are counted from the one before, in one pass
	// over the input instead of one per node.
	at cursor
}

// cursor is a byte offset with its 1-based line and column.
type cursor struct{ off, line, col int }

// locate returns the line and column of offset off, counting from the
// last position when off is after it.
func (b *jsonBuilder) locate(off int) (line, col int) {
	off = min(off, len(b.data))
	if b.at.line == 0 || off < b.at.off {
		line, col = lineColumn(b.data, off)
		b.at = cursor{off, line, col}
		return line, col
	}
	seg := b.data[b.at.off:off]
	if nl := bytes.Count(seg, []byte("\n")); nl > 0 {
		b.at.line += nl
		b.at.col = utf8.RuneCount(seg[bytes.LastIndexByte(seg, '\n')+1:]) + 1
	} else {
		b.at.col += utf8.RuneCount(seg)
	}
	b.at.off = off
	return b.at.line, b.at.col
}

// start returns the offset where the next token begins.
func (b *jsonBuilder) start() int {
	off := int(b.dec.InputOffset())
	for off < len(b.data) && strings.IndexByte(" \t\r\n,:", b.data[off]) >= 0 {
		off++
	}
	return off
}

func (b *jsonBuilder) node(off int, kind yaml.Kind, tag, value string) *yaml.Node {
	line, col := b.locate(off)
	return &yaml.Node{Kind: kind, Tag: tag, Value: value, Line: line, Column: col}
}

func (b *jsonBuilder) value() (*yaml.Node, error) {
	off := b.start()
	tok, err := b.dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := b.node(off, yaml.SequenceNode, tagSeq, "")
		if t == '{' {
			n.Kind, n.Tag = yaml.MappingNode, tagMap
		}
		for b.dec.More() {
			if n.Kind == yaml.MappingNode {
				koff := b.start()
				key, err := b.dec.Token()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, b.node(koff, yaml.ScalarNode, tagStr, key.(string)))
			}
			c, err := b.value()
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, c)
		}
		if _, err := b.dec.Token(); err != nil {
			return nil, err
		}
		return n, nil
	case string:
		return b.node(off, yaml.ScalarNode, tagStr, t), nil
	case json.Number:
		tag := tagInt
		if strings.ContainsAny(string(t), ".eE") {
			tag = tagFloat
		}
		return b.node(off, yaml.ScalarNode, tag, string(t)), nil
	case bool:
		return b.node(off, yaml.ScalarNode, tagBool, strconv.FormatBool(t)), nil
	default:
		return b.node(off, yaml.ScalarNode, tagNull, "null"), nil
	}
}

// problem locates the syntax error that stopped the token walk. The walk's
// errors are terse and their offsets approximate, so the message and place
// come from Unmarshal, which says what it expected and counts the offending
// byte in its offset.
func (b *jsonBuilder) problem(file string, err error) *Problem {
	off, msg := len(b.data), err.Error()
	var se *json.SyntaxError
	if errors.As(json.Unmarshal(b.data, new(any)), &se) {
		msg = se.Error()
		if !strings.HasPrefix(msg, "unexpected end") {
			off = max(int(se.Offset)-1, 0)
		}
	} else if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		msg = "unexpected end of JSON input"
	}
	line, col := lineColumn(b.data, off)
	return &Problem{File: file, Line: line, Column: col, Message: msg}
}

// YAML tags the decoder tells apart.
const (
	tagNull      = "!!null"
	tagBool      = "!!bool"
	tagInt       = "!!int"
	tagFloat     = "!!float"
	tagStr       = "!!str"
	tagTimestamp = "!!timestamp"
	tagMerge     = "!!merge"
	tagMap       = "!!map"
	tagSeq       = "!!seq"
)

type decoder struct {
	file     string
	pos      positions
	problems []Problem
	// budget is the number of values left to decode.
	budget int
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.file, Line: n.Line, Column: n.Column, Path: path, Message: fmt.Sprintf(format, args...)})
}

// enter accounts for the value n at depth and resolves an alias; it
// reports false when the value must not be decoded.
func (d *decoder) enter(n *yaml.Node, depth int) (*yaml.Node, bool) {
	if d.budget <= 0 {
		return nil, false
	}
	d.budget--
	if d.budget == 0 {
		// Reported for the whole document: what was not decoded must not
		// be reported as missing.
		d.fail(n, "", "document too large: too many values after expanding aliases")
		return nil, false
	}
	if depth > maxDepth {
		d.fail(n, "", "too deeply nested (more than %d levels)", maxDepth)
		d.budget = 0
		return nil, false
	}
	if n.Kind == yaml.AliasNode {
		return n.Alias, n.Alias != nil
	}
	return n, true
}

// decode sets v from n. Null leaves v at its zero value.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, depth int) {
	if _, seen := d.pos[path]; !seen {
		d.pos[path] = position{n.Line, n.Column}
	}
	n, ok := d.enter(n, depth)
	if !ok {
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == tagNull {
		v.SetZero()
		return
	}
	if v.Type() == decimalType {
		d.decimal(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.String:
		d.str(n, v, path)
	case reflect.Int64:
		d.integer(n, v, path)
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		d.decode(n, e.Elem(), path, depth)
		v.Set(e)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != tagBool {
			d.fail(n, path, "want true or false, got %s", describe(n))
			return
		}
		v.SetBool(strings.EqualFold(n.Value, "true"))
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "want a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "want a mapping, got %s", describe(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		d.pairs(n, path, func(key string, _, val *yaml.Node) {
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, e, joinPath(path, key), depth+1)
			m.SetMapIndex(reflect.ValueOf(key), e)
		})
		v.Set(m)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "want a mapping, got %s", describe(n))
			return
		}
		fields := fieldsOf(v.Type())
		d.pairs(n, path, func(key string, k, val *yaml.Node) {
			i, ok := fields.index[key]
			if !ok {
				d.fail(k, joinPath(path, key), "unknown key %q%s", key, suggest(key, fields.names))
				return
			}
			d.decode(val, v.Field(i), joinPath(path, key), depth+1)
		})
	case reflect.Interface:
		if x := d.free(n, path, depth); x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		panic(fmt.Sprintf("policy: no decoding into %s", v.Type()))
	}
}

// str sets a string. Numbers are refused rather than converted, as JSON
// refuses them; the message says how to write the string.
func (d *decoder) str(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case tagStr, tagTimestamp:
			v.SetString(n.Value)
			return
		case tagInt, tagFloat:
			d.fail(n, path, "want a string, got number %s (quote it: %q)", n.Value, n.Value)
			return
		}
	}
	d.fail(n, path, "want a string, got %s", describe(n))
}

// decimalType is written as a number or a string and kept as the text
// written, so "49.90" stays exact; validation parses it.
var decimalType = reflect.TypeFor[gatehouse.Decimal]()

func (d *decoder) decimal(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case tagInt, tagFloat, tagStr:
			v.SetString(n.Value)
			return
		}
	}
	d.fail(n, path, "want a decimal number, got %s", describe(n))
}

// integer sets an int64 from a YAML or JSON integer.
func (d *decoder) integer(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != tagInt {
		d.fail(n, path, "want a whole number, got %s", describe(n))
		return
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
	if err != nil {
		d.fail(n, path, "number %s is not a 64-bit whole number", n.Value)
		return
	}
	v.SetInt(i)
}

// pairs calls fn for each entry of a mapping after rejecting non-scalar,
// merge and duplicate keys.
func (d *decoder) pairs(n *yaml.Node, path string, fn func(key string, k, v *yaml.Node)) {
	first := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		switch {
		case k.Kind != yaml.ScalarNode:
			d.fail(k, path, "want a string key, got %s", describe(k))
			continue
		case k.ShortTag() == tagMerge:
			d.fail(k, path, "merge keys (<<) are not supported")
			continue
		}
		if line, dup := first[k.Value]; dup {
			d.fail(k, joinPath(path, k.Value), "duplicate key %q (first at line %d)", k.Value, line)
			continue
		}
		first[k.Value] = k.Line
		fn(k.Value, k, v)
	}
}

// free converts a free-form value (attributes) to what encoding/json would
// decode it to: map[string]any, []any, string, float64, bool or nil.
// Positions inside it are not recorded: validation never looks inside.
func (d *decoder) free(n *yaml.Node, path string, depth int) any {
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		d.pairs(n, path, func(key string, _, val *yaml.Node) {
			p := joinPath(path, key)
			if c, ok := d.enter(val, depth+1); ok {
				m[key] = d.free(c, p, depth+1)
			}
		})
		return m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if c, ok := d.enter(c, depth+1); ok {
				s = append(s, d.free(c, p, depth+1))
			}
		}
		return s
	}
	switch n.ShortTag() {
	case tagNull:
		return nil
	case tagBool:
		return strings.EqualFold(n.Value, "true")
	case tagStr, tagTimestamp:
		return n.Value
	case tagInt, tagFloat:
		f, err := number(n)
		if err != nil {
			d.fail(n, path, "%v", err)
			return nil
		}
		return f
	}
	d.fail(n, path, "unsupported value %s", describe(n))
	return nil
}

// number converts a YAML or JSON number to the float64 encoding/json decodes
// it to. Negative zero becomes zero, which JSON cannot tell apart anyway.
func number(n *yaml.Node) (float64, error) {
	text := strings.ReplaceAll(n.Value, "_", "")
	f, err := strconv.ParseFloat(text, 64)
	if n.ShortTag() == tagInt {
		// YAML integers may be hexadecimal, octal or binary, and any size.
		if b, ok := new(big.Int).SetString(text, 0); ok {
			f, _ = new(big.Float).SetInt(b).Float64()
			err = nil
		}
	}
	if err != nil && !errors.Is(err, strconv.ErrRange) || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("number %s cannot be represented in JSON", n.Value)
	}
	if f == 0 {
		f = 0
	}
	return f, nil
}

// describe names a value in type errors: "a list", "number 12", `"x"`.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch tag := n.ShortTag(); tag {
	case tagNull:
		return "null"
	case tagBool:
		return "boolean " + n.Value
	case tagInt, tagFloat:
		return "number " + n.Value
	case tagStr, tagTimestamp:
		return strconv.Quote(n.Value)
	default:
		return fmt.Sprintf("%s %q", tag, n.Value)
	}
}

// structFields maps the json names of a struct's fields to their indexes.
type structFields struct {
	index map[string]int
	names []string
}

var fieldCache sync.Map // reflect.Type → *structFields

func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{index: make(map[string]int, t.NumField())}
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if !sf.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		f.index[name] = i
		f.names = append(f.names, name)
	}
	fieldCache.Store(t, f)
	return f
}

// Suggest names the known name closest to a mistyped one, within two
// edits, as " (did you mean "NAME"?)"; "" when none is that close.
func Suggest(key string, names []string) string { return suggest(key, names) }

// suggest names the known key closest to a mistyped one, within two edits.
func suggest(key string, names []string) string {
	best, bestDist := "", 3
	for _, name := range names {
		if dist := editDistance(strings.ToLower(key), strings.ToLower(name)); dist < bestDist {
			best, bestDist = name, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance of a and b, in bytes.
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
