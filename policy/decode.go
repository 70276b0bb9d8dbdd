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

// locator finds the position of a value by its path (see
// positions.locate).
type locator interface {
	locate(path string) position
}

// lazyPositions are the positions of a document's values, found by
// decoding it again the first time a problem is to be located, so that a
// valid document costs no position map.
type lazyPositions struct {
	once sync.Once
	file string
	data []byte
	pos  positions
}

func (l *lazyPositions) locate(path string) position {
	l.once.Do(func() {
		l.pos = positions{"": {1, 1}}
		decodeInto(l.file, l.data, &gatehouse.Policy{}, l.pos)
		l.data = nil
	})
	return l.pos.locate(path)
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

// decodeDocument decodes data, YAML or JSON, into v (a pointer) and returns
// the position of every value and the problems found, located in file. A
// document that does not parse at all returns nil positions. A document
// whose first character is { or [, or whose file name ends in .json, is
// held to JSON's grammar; other documents are YAML. An empty document
// decodes to v's zero value.
func decodeDocument(file string, data []byte, v any) (positions, []Problem) {
	pos := positions{"": {1, 1}}
	res := decodeInto(file, data, v, pos)
	if !res.ok {
		return nil, res.problems
	}
	return pos, res.problems
}

// decoded is what decodeInto found.
type decoded struct {
	// ok is false when the document does not parse at all.
	ok       bool
	problems []Problem
	// sections are the document's top-level keys, in order.
	sections []string
}

// decodeInto is decodeDocument that records positions in pos only when it
// is not nil: a large document's positions take several times its size,
// and are needed only to locate a problem.
func decodeInto(file string, data []byte, v any, pos positions) decoded {
	if !utf8.Valid(data) {
		return decoded{problems: []Problem{invalidUTF8(file, data)}}
	}
	strs := map[string]string{}
	newDecoder := func() *decoder {
		return &decoder{
			file: file,
			pos:  pos,
			// Aliases can make a small document expand enormously; a
			// document without them has fewer values than bytes.
			budget: 16*len(data) + 1024,
			strs:   strs,
		}
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	isJSON := strings.HasSuffix(strings.ToLower(file), ".json") || len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[')
	// The document is decoded as it is read (see rootStream) when it can
	// be, else from its whole tree.
	if streamable(v) {
		d := newDecoder()
		target := reflect.ValueOf(v).Elem()
		begin := func(root *yaml.Node) *rootStream { return d.begin(root, target) }
		var done bool
		if isJSON {
			done = len(trimmed) > 0 && trimmed[0] == '{' && (&jsonScanner{data: data, line: 1, col: 1, strs: strs}).stream(begin)
		} else if entries, starts, ok := yamlPlan(data); ok {
			done = streamYAML(data, entries, starts, begin)
		}
		if done {
			return decoded{ok: true, problems: d.problems, sections: d.sections}
		}
		target.SetZero()
		if pos != nil {
			clear(pos)
			pos[""] = position{1, 1}
		}
	}
	return decodeWhole(file, data, v, isJSON, newDecoder())
}

// decodeWhole is decodeInto by the document's whole node tree, built
// before decoding; d is the decoder to use.
func decodeWhole(file string, data []byte, v any, isJSON bool, d *decoder) decoded {
	var root *yaml.Node
	var problem *Problem
	if isJSON {
		root, problem = jsonTreeAt(file, data, 1, d.strs)
	} else {
		root, problem = yamlTree(file, data)
	}
	if problem != nil {
		return decoded{problems: []Problem{*problem}}
	}
	d.root = root
	if root != nil {
		d.decode(root, reflect.ValueOf(v).Elem(), 0)
	}
	return decoded{ok: true, problems: d.problems, sections: d.sections}
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
	return jsonTreeAt(file, data, 1, nil)
}

// jsonTreeAt is jsonTree for data that starts at line start of file; the
// strings of a valid document are interned in strs, if not nil (see
// interned).
func jsonTreeAt(file string, data []byte, start int, strs map[string]string) (*yaml.Node, *Problem) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	sc := &jsonScanner{data: data, line: start, col: 1, strs: strs}
	if root, ok := sc.document(); ok {
		return root, nil
	}
	// Not valid JSON: the token walk says where and why.
	root, problem := tokenTree(file, data)
	if problem != nil && problem.Line > 0 {
		problem.Line += start - 1
	}
	return root, problem
}

// tokenTree is jsonTree by encoding/json's tokens, for invalid documents:
// its errors say where and why.
func tokenTree(file string, data []byte) (*yaml.Node, *Problem) {
	// An invalid document is walked token by token to find where and why.
	b := &jsonBuilder{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	b.dec.UseNumber()
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

// jsonScanner checks a JSON document and builds its node tree in one pass
// over its bytes, counting lines and columns as it goes: several times
// faster than walking encoding/json's tokens, which a document of a
// hundred thousand users spent most of its parse in. It accepts exactly
// what json.Valid accepts; an invalid document is walked by tokens
// instead, for the message.
type jsonScanner struct {
	data []byte
	// off is the next byte; line and col are its 1-based position, col
	// counted in runes.
	off, line, col int
	// nodes is a block of nodes handed out one by one: one allocation per
	// up to a thousand values instead of one per value.
	nodes []yaml.Node
	// strs, when not nil, interns the strings read (see interned).
	strs map[string]string
}

// maxInterned bounds the strings a decoder interns: ids and names are
// short, descriptions and conditions may not be.
const maxInterned = 128

// maxInternedStrings bounds how many strings a decoder interns. The ids a
// document repeats come early (in the permissions, roles and tenants
// before the users) and stay; the unique emails after them would only
// grow the map until every lookup misses the cache: at a million users
// an unbounded map made lookups a third of the parse, and a map larger
// than the caches makes every lookup a miss.
const maxInternedStrings = 1 << 14

// interned returns b as a string, the one in strs if strs holds it: the
// keys and ids of a large document repeat in every object, and both the
// allocation of each copy and the memory the policy keeps are saved.
func interned(strs map[string]string, b []byte) string {
	if strs == nil || len(b) > maxInterned {
		return string(b)
	}
	if s, ok := strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(strs) < maxInternedStrings {
		strs[s] = s
	}
	return s
}

func (s *jsonScanner) node(kind yaml.Kind, tag, value string, line, col int) *yaml.Node {
	if len(s.nodes) == cap(s.nodes) {
		// A value and its punctuation take some sixteen bytes in a
		// policy: a short input (one line of a JSON-lines document) gets
		// a block about its size, and a next one if that runs out.
		s.nodes = make([]yaml.Node, 0, min(1024, 8+(len(s.data)-s.off)/16))
	}
	s.nodes = append(s.nodes, yaml.Node{Kind: kind, Tag: tag, Value: value, Line: line, Column: col})
	return &s.nodes[len(s.nodes)-1]
}

// space skips white space.
func (s *jsonScanner) space() {
	for s.off < len(s.data) {
		switch s.data[s.off] {
		case '\n':
			s.line++
			s.col = 1
		case ' ', '\t', '\r':
			s.col++
		default:
			return
		}
		s.off++
	}
}

// skip passes n bytes that are one rune each.
func (s *jsonScanner) skip(n int) {
	s.off += n
	s.col += n
}

// maxJSONDepth is the nesting encoding/json accepts.
const maxJSONDepth = 10000

// document reads the whole input as one JSON value; ok is false if it is
// not exactly one valid JSON value, as json.Valid would say.
func (s *jsonScanner) document() (*yaml.Node, bool) {
	n, ok := s.value(0)
	if !ok {
		return nil, false
	}
	s.space()
	return n, s.off == len(s.data)
}

// more reports whether a byte is left, after white space.
func (s *jsonScanner) more() bool {
	s.space()
	return s.off < len(s.data)
}

func (s *jsonScanner) value(depth int) (*yaml.Node, bool) {
	if !s.more() {
		return nil, false
	}
	line, col := s.line, s.col
	switch c := s.data[s.off]; c {
	case '{', '[':
		if depth >= maxJSONDepth {
			return nil, false
		}
		n := s.node(yaml.SequenceNode, tagSeq, "", line, col)
		end := byte(']')
		if c == '{' {
			n.Kind, n.Tag, end = yaml.MappingNode, tagMap, '}'
		}
		s.skip(1)
		if !s.more() {
			return nil, false
		}
		if s.data[s.off] == end {
			s.skip(1)
			return n, true
		}
		for {
			if n.Kind == yaml.MappingNode {
				if !s.more() || s.data[s.off] != '"' {
					return nil, false
				}
				k, ok := s.value(depth + 1)
				if !ok || !s.more() || s.data[s.off] != ':' {
					return nil, false
				}
				s.skip(1)
				n.Content = append(n.Content, k)
			}
			v, ok := s.value(depth + 1)
			if !ok || !s.more() {
				return nil, false
			}
			n.Content = append(n.Content, v)
			switch s.data[s.off] {
			case ',':
				s.skip(1)
			case end:
				s.skip(1)
				return n, true
			default:
				return nil, false
			}
		}
	case '"':
		v, ok := s.str()
		return s.node(yaml.ScalarNode, tagStr, v, line, col), ok
	case 't':
		return s.literal("true", tagBool, line, col)
	case 'f':
		return s.literal("false", tagBool, line, col)
	case 'n':
		return s.literal("null", tagNull, line, col)
	}
	return s.number(line, col)
}

func (s *jsonScanner) literal(word, tag string, line, col int) (*yaml.Node, bool) {
	if !bytes.HasPrefix(s.data[s.off:], []byte(word)) {
		return nil, false
	}
	s.skip(len(word))
	return s.node(yaml.ScalarNode, tag, word, line, col), true
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (s *jsonScanner) number(line, col int) (*yaml.Node, bool) {
	start, tag := s.off, tagInt
	digits := func() int {
		n := 0
		for s.off < len(s.data) && s.data[s.off] >= '0' && s.data[s.off] <= '9' {
			s.off++
			n++
		}
		return n
	}
	if s.off < len(s.data) && s.data[s.off] == '-' {
		s.off++
	}
	if s.off < len(s.data) && s.data[s.off] == '0' {
		s.off++
	} else if digits() == 0 {
		return nil, false
	}
	if s.off < len(s.data) && s.data[s.off] == '.' {
		s.off++
		tag = tagFloat
		if digits() == 0 {
			return nil, false
		}
	}
	if s.off < len(s.data) && (s.data[s.off] == 'e' || s.data[s.off] == 'E') {
		s.off++
		tag = tagFloat
		if s.off < len(s.data) && (s.data[s.off] == '+' || s.data[s.off] == '-') {
			s.off++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	s.col += s.off - start
	return s.node(yaml.ScalarNode, tag, string(s.data[start:s.off]), line, col), true
}

// str reads the string at s.off, quotes included, and returns its value;
// ok is false if it is not a valid JSON string.
func (s *jsonScanner) str() (string, bool) {
	start, escaped := s.off, false
	i := start + 1
	for {
		if i >= len(s.data) {
			return "", false
		}
		c := s.data[i]
		if c == '"' {
			break
		}
		if c < 0x20 {
			return "", false
		}
		if c == '\\' {
			escaped = true
			if i+1 >= len(s.data) {
				return "", false
			}
			switch s.data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(s.data) {
					return "", false
				}
				for _, h := range s.data[i+2 : i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return "", false
					}
				}
				i += 6
			default:
				return "", false
			}
			continue
		}
		i++
	}
	raw := s.data[start : i+1]
	for _, b := range raw {
		if b&0xC0 != 0x80 {
			s.col++
		}
	}
	s.off = i + 1
	if !escaped {
		return interned(s.strs, raw[1:len(raw)-1]), true
	}
	var v string
	// A valid JSON string: unquoting cannot fail.
	_ = json.Unmarshal(raw, &v)
	return v, true
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
	file string
	// pos, when not nil, records the position of every value.
	pos      positions
	problems []Problem
	// budget is the number of values left to decode.
	budget int
	// path is the path of the value being decoded ("users[2].roles"),
	// built in place as the walk descends and cut back as it returns, so
	// that a value's path costs a string only when it is recorded or has
	// a problem.
	path []byte
	// root is the document's top-level value; sections are its keys.
	root     *yaml.Node
	sections []string
	// strs, when not nil, interns the strings decoded (see interned).
	strs map[string]string
}

// intern returns s, or the equal string d.strs holds (see interned).
func (d *decoder) intern(s string) string {
	if d.strs == nil || len(s) > maxInterned {
		return s
	}
	if v, ok := d.strs[s]; ok {
		return v
	}
	if len(d.strs) < maxInternedStrings {
		d.strs[s] = s
	}
	return s
}

// at returns the path of the value being decoded.
func (d *decoder) at() string { return string(d.path) }

// key descends into the entry key of a mapping; it returns the length to
// cut the path back to.
func (d *decoder) key(key string) int {
	n := len(d.path)
	if n > 0 {
		d.path = append(d.path, '.')
	}
	d.path = append(d.path, key...)
	return n
}

// index descends into the i-th entry of a list; it returns the length to
// cut the path back to.
func (d *decoder) index(i int) int {
	n := len(d.path)
	d.path = append(d.path, '[')
	d.path = strconv.AppendInt(d.path, int64(i), 10)
	d.path = append(d.path, ']')
	return n
}

func (d *decoder) fail(n *yaml.Node, format string, args ...any) {
	d.failAt(n, d.at(), format, args...)
}

func (d *decoder) failAt(n *yaml.Node, path, format string, args ...any) {
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
		d.failAt(n, "", "document too large: too many values after expanding aliases")
		return nil, false
	}
	if depth > maxDepth {
		d.failAt(n, "", "too deeply nested (more than %d levels)", maxDepth)
		d.budget = 0
		return nil, false
	}
	if n.Kind == yaml.AliasNode {
		return n.Alias, n.Alias != nil
	}
	return n, true
}

// decode sets v from n, the value at d.path. Null leaves v at its zero
// value.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, depth int) {
	if d.pos != nil {
		if _, seen := d.pos[string(d.path)]; !seen {
			d.pos[d.at()] = position{n.Line, n.Column}
		}
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
		d.decimal(n, v)
		return
	}
	switch v.Kind() {
	case reflect.String:
		d.str(n, v)
	case reflect.Int64:
		d.integer(n, v)
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		d.decode(n, e.Elem(), depth)
		v.Set(e)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != tagBool {
			d.fail(n, "want true or false, got %s", describe(n))
			return
		}
		v.SetBool(strings.EqualFold(n.Value, "true"))
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, "want a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			back := d.index(i)
			d.decode(c, s.Index(i), depth+1)
			d.path = d.path[:back]
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, "want a mapping, got %s", describe(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		d.pairs(n, func(key string, _, val *yaml.Node) {
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, e, depth+1)
			m.SetMapIndex(reflect.ValueOf(key), e)
		})
		v.Set(m)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(n, "want a mapping, got %s", describe(n))
			return
		}
		fields := fieldsOf(v.Type())
		d.pairs(n, func(key string, k, val *yaml.Node) {
			i, ok := fields.index[key]
			if !ok {
				d.fail(k, "unknown key %q%s", key, suggest(key, fields.names))
				return
			}
			d.decode(val, v.Field(i), depth+1)
		})
	case reflect.Interface:
		if x := d.free(n, depth); x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		panic(fmt.Sprintf("policy: no decoding into %s", v.Type()))
	}
}

// str sets a string. Numbers are refused rather than converted, as JSON
// refuses them; the message says how to write the string.
func (d *decoder) str(n *yaml.Node, v reflect.Value) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case tagStr, tagTimestamp:
			v.SetString(d.intern(n.Value))
			return
		case tagInt, tagFloat:
			d.fail(n, "want a string, got number %s (quote it: %q)", n.Value, n.Value)
			return
		}
	}
	d.fail(n, "want a string, got %s", describe(n))
}

// decimalType is written as a number or a string and kept as the text
// written, so "49.90" stays exact; validation parses it.
var decimalType = reflect.TypeFor[gatehouse.Decimal]()

func (d *decoder) decimal(n *yaml.Node, v reflect.Value) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case tagInt, tagFloat, tagStr:
			v.SetString(n.Value)
			return
		}
	}
	d.fail(n, "want a decimal number, got %s", describe(n))
}

// integer sets an int64 from a YAML or JSON integer.
func (d *decoder) integer(n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != tagInt {
		d.fail(n, "want a whole number, got %s", describe(n))
		return
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
	if err != nil {
		d.fail(n, "number %s is not a 64-bit whole number", n.Value)
		return
	}
	v.SetInt(i)
}

// pairs calls fn for each entry of a mapping, with d.path at the entry,
// after rejecting non-scalar, merge and duplicate keys.
func (d *decoder) pairs(n *yaml.Node, fn func(key string, k, v *yaml.Node)) {
	var first map[string]int
	if len(n.Content) > 16 {
		first = make(map[string]int, len(n.Content)/2)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		switch {
		case k.Kind != yaml.ScalarNode:
			d.fail(k, "want a string key, got %s", describe(k))
			continue
		case k.ShortTag() == tagMerge:
			d.fail(k, "merge keys (<<) are not supported")
			continue
		}
		back := d.key(k.Value)
		if line, dup := firstKey(n, i, k.Value, first); dup {
			d.fail(k, "duplicate key %q (first at line %d)", k.Value, line)
		} else {
			if first != nil {
				first[k.Value] = k.Line
			}
			if back == 0 && n == d.root {
				d.sections = append(d.sections, k.Value)
			}
			fn(k.Value, k, v)
		}
		d.path = d.path[:back]
	}
}

// firstKey reports the line of an earlier entry of mapping n with key, the
// key of entry i: from first when the mapping is large enough to have one,
// else by looking back over the few entries before i.
func firstKey(n *yaml.Node, i int, key string, first map[string]int) (int, bool) {
	if first != nil {
		line, dup := first[key]
		return line, dup
	}
	for j := 0; j < i; j += 2 {
		k := n.Content[j]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() != tagMerge && k.Value == key {
			return k.Line, true
		}
	}
	return 0, false
}

// free converts a free-form value (attributes) to what encoding/json would
// decode it to: map[string]any, []any, string, float64, bool or nil.
// Positions inside it are not recorded: validation never looks inside.
func (d *decoder) free(n *yaml.Node, depth int) any {
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		d.pairs(n, func(key string, _, val *yaml.Node) {
			if c, ok := d.enter(val, depth+1); ok {
				m[key] = d.free(c, depth+1)
			}
		})
		return m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			back := d.index(i)
			if c, ok := d.enter(c, depth+1); ok {
				s = append(s, d.free(c, depth+1))
			}
			d.path = d.path[:back]
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
			d.fail(n, "%v", err)
			return nil
		}
		return f
	}
	d.fail(n, "unsupported value %s", describe(n))
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
