package policy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"go.yaml.in/yaml/v3"
)

// The JSON-lines form of a policy document holds one object per line, each
// a JSON object whose "kind" names what it is and whose other keys are
// those the object has in a YAML or JSON document:
//
//	{"kind":"document","sections":["permissions","users"]}
//	{"kind":"permission","name":"chat.view"}
//	{"kind":"user","email":"ann@example.com","grants":[{"permission":"chat.view"}]}
//
// The optional first line, of kind "document", lists the sections the
// document holds even when it has no object of theirs, as `[]` does in a
// YAML document; a section with an object line is held anyway. Blank lines
// are skipped. A JSON-lines document is read a line at a time, so that
// applying a policy of a million users never holds a node tree of more
// than one object.

// LinesKindDocument is the kind of a JSON-lines document's header line.
const LinesKindDocument = "document"

// MaxLine bounds one line of a JSON-lines document.
const MaxLine = 16 << 20

// linesStart recognizes a JSON-lines document by its first key, "kind",
// which no section of a YAML or JSON document is called.
var linesStart = regexp.MustCompile(`^\s*\{\s*"kind"\s*:`)

// IsLines reports whether a document named file, starting with head (its
// first few hundred bytes suffice), is in the JSON-lines form: its name
// ends in .jsonl or .ndjson, or its first key is "kind".
func IsLines(file string, head []byte) bool {
	switch ext := strings.ToLower(file); {
	case strings.HasSuffix(ext, ".jsonl"), strings.HasSuffix(ext, ".ndjson"):
		return true
	}
	return linesStart.Match(head)
}

// ParseLines reads a JSON-lines policy document named file from r, a line
// at a time, normalizes it and validates it as Parse does; it refuses a
// document larger than max bytes (none if max is negative). Problems found
// while decoding a line are located at their line and column; those found
// by validating the whole document (an unknown reference, a duplicate) at
// their object's line.
func ParseLines(file string, r io.Reader, max int64) (*Document, error) {
	lr := &linesReader{file: file, p: &gatehouse.Policy{}, at: &linePositions{objects: map[string][]int{}}, sections: map[string]bool{}, strs: map[string]string{}}
	if err := lr.read(r, max); err != nil {
		return nil, err
	}
	if len(lr.fatal) > 0 {
		return nil, sortedError(lr.fatal)
	}
	p := lr.p
	Normalize(p)
	d := &Document{Policy: p, File: file, sections: lr.sections, pos: lr.at}
	absent := map[gatehouse.Kind]bool{}
	for _, kind := range gatehouse.Kinds {
		absent[kind] = !d.Has(kind)
	}
	if more := shadow(validate(p, absent, d.pos), lr.problems); len(more) > 0 || len(lr.problems) > 0 {
		return nil, d.Locate(append(lr.problems, more...))
	}
	return d, nil
}

// linesReader decodes a JSON-lines document into p.
type linesReader struct {
	file     string
	p        *gatehouse.Policy
	at       *linePositions
	sections map[string]bool
	// problems are those of decoding lines; fatal ones (an unreadable
	// or oversized document) end the parse without validation.
	problems, fatal []Problem
	// settingsLine is the line of the settings object, 0 before one.
	settingsLine int
	// strs interns the strings of every line (see interned).
	strs map[string]string
}

func (lr *linesReader) read(r io.Reader, max int64) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		line []byte
		size int64
		no   int
	)
	for {
		chunk, err := br.ReadSlice('\n')
		size += int64(len(chunk))
		if max >= 0 && size > max {
			lr.fatal = append(lr.fatal, Problem{File: lr.file, Message: fmt.Sprintf("document larger than %d bytes", max)})
			return nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(line)+len(chunk) > MaxLine {
				lr.fatal = append(lr.fatal, Problem{File: lr.file, Line: no + 1, Message: fmt.Sprintf("line longer than %d bytes", MaxLine)})
				return nil
			}
			line = append(line, chunk...)
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read %s: %w", lr.file, err)
		}
		if len(line) > 0 {
			line = append(line, chunk...)
			chunk = line
		}
		if len(chunk) > 0 {
			no++
			lr.line(no, bytes.TrimRight(chunk, "\r\n"))
		}
		line = line[:0]
		if err != nil {
			return nil
		}
	}
}

// lineKinds maps the kind of an object line to its section, the json name
// of its gatehouse.Policy field.
var lineKinds = func() map[string]string {
	m := map[string]string{}
	for _, k := range gatehouse.Kinds {
		m[string(k)] = k.Section()
	}
	return m
}()

var lineKindNames = func() []string {
	names := []string{LinesKindDocument}
	for _, k := range gatehouse.Kinds {
		names = append(names, string(k))
	}
	return names
}()

// line decodes line number no.
func (lr *linesReader) line(no int, data []byte) {
	if len(bytes.TrimSpace(data)) == 0 {
		return
	}
	fail := func(line, col int, path, format string, args ...any) {
		lr.problems = append(lr.problems, Problem{File: lr.file, Line: line, Column: col, Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if !utf8.Valid(data) {
		p := invalidUTF8(lr.file, data)
		fail(no, p.Column, "", "%s", p.Message)
		return
	}
	root, problem := jsonTreeAt(lr.file, data, no, lr.strs)
	if problem != nil {
		lr.problems = append(lr.problems, *problem)
		return
	}
	if root.Kind != yaml.MappingNode {
		fail(root.Line, root.Column, "", "want an object with a \"kind\", got %s", describe(root))
		return
	}
	kindAt := -1
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "kind" {
			kindAt = i
			break
		}
	}
	if kindAt < 0 {
		fail(root.Line, root.Column, "", "no \"kind\": want one of %s", strings.Join(lineKindNames, ", "))
		return
	}
	kn := root.Content[kindAt+1]
	if kn.Kind != yaml.ScalarNode || kn.Tag != tagStr {
		fail(kn.Line, kn.Column, "", "kind: want a string, got %s", describe(kn))
		return
	}
	// The object without its kind is decoded as the document's entry.
	obj := *root
	obj.Content = append(append([]*yaml.Node(nil), root.Content[:kindAt]...), root.Content[kindAt+2:]...)
	for i := 0; i+1 < len(obj.Content); i += 2 {
		if k := obj.Content[i]; k.Value == "kind" {
			fail(k.Line, k.Column, "", "duplicate key %q (first at line %d)", "kind", no)
			return
		}
	}
	kind := kn.Value
	if kind == LinesKindDocument {
		lr.header(no, &obj)
		return
	}
	section, ok := lineKinds[kind]
	if !ok {
		fail(kn.Line, kn.Column, "", "unknown kind %q%s", kind, suggest(kind, lineKindNames))
		return
	}
	lr.sections[section] = true
	field := reflect.ValueOf(lr.p).Elem().Field(fieldsOf(reflect.TypeFor[gatehouse.Policy]()).index[section])
	d := &decoder{file: lr.file, budget: 16*len(data) + 1024, root: &obj, strs: lr.strs}
	if field.Kind() == reflect.Slice {
		i := field.Len()
		field.Set(reflect.Append(field, reflect.Zero(field.Type().Elem())))
		lr.at.objects[section] = append(lr.at.objects[section], no)
		d.path = strconv.AppendInt(append([]byte(section), '['), int64(i), 10)
		d.path = append(d.path, ']')
		d.decode(&obj, field.Index(i), 1)
	} else {
		if lr.settingsLine > 0 {
			fail(kn.Line, kn.Column, section, "a second %s object (first at line %d)", kind, lr.settingsLine)
			return
		}
		lr.settingsLine, lr.at.settings = no, no
		d.path = []byte(section)
		d.decode(&obj, field, 1)
	}
	lr.problems = append(lr.problems, d.problems...)
}

// header reads the document line, which must come first.
func (lr *linesReader) header(no int, obj *yaml.Node) {
	var h struct {
		Sections []string `json:"sections"`
	}
	d := &decoder{file: lr.file, budget: 1 << 20, root: obj}
	if lr.at.header > 0 || lr.settingsLine > 0 || len(lr.at.objects) > 0 {
		d.fail(obj, "the %q line must be the first", LinesKindDocument)
	} else {
		lr.at.header = no
		d.decode(obj, reflect.ValueOf(&h).Elem(), 1)
	}
	var list *yaml.Node
	for i := 0; i+1 < len(obj.Content); i += 2 {
		if obj.Content[i].Value == "sections" {
			list = obj.Content[i+1]
		}
	}
	for i, s := range h.Sections {
		if !topLevel[s] {
			names := make([]string, 0, len(gatehouse.Kinds))
			for _, k := range gatehouse.Kinds {
				names = append(names, k.Section())
			}
			d.failAt(list.Content[i], fmt.Sprintf("sections[%d]", i), "unknown section %q%s", s, suggest(s, names))
			continue
		}
		lr.sections[s] = true
	}
	lr.problems = append(lr.problems, d.problems...)
}

// linePositions locate the values of a JSON-lines document at the line of
// their object: the header's, the settings object's, or the i-th object of
// a section's.
type linePositions struct {
	header, settings int
	objects          map[string][]int
}

func (l *linePositions) locate(path string) position {
	section := sectionOf(path)
	if section == gatehouse.KindSettings.Section() {
		return position{line: l.settings}
	}
	rest := strings.TrimPrefix(path, section)
	if digits, _, ok := strings.Cut(strings.TrimPrefix(rest, "["), "]"); ok && strings.HasPrefix(rest, "[") {
		if i, err := strconv.Atoi(digits); err == nil && i >= 0 && i < len(l.objects[section]) {
			return position{line: l.objects[section][i]}
		}
	}
	return position{line: l.header}
}

// encodeLines writes p as a JSON-lines document: the header listing every
// section, so that applying it anywhere replaces the whole policy as a
// full export does, the settings, then each object in Marshal's order.
func encodeLines(w io.Writer, p *gatehouse.Policy) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	sections := make([]string, len(gatehouse.Kinds))
	for i, k := range gatehouse.Kinds {
		sections[i] = k.Section()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Conditions compare with < and >; keep them readable.
	enc.SetEscapeHTML(false)
	line := func(kind string, v any) error {
		buf.Reset()
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("encode %s: %w", kind, err)
		}
		body := buf.Bytes()
		fmt.Fprintf(bw, `{"kind":%q`, kind)
		if len(body) > 3 { // more than "{}\n"
			bw.WriteByte(',')
		}
		bw.Write(body[1:])
		return nil
	}
	if err := line(LinesKindDocument, struct {
		Sections []string `json:"sections"`
	}{sections}); err != nil {
		return err
	}
	if err := line(string(gatehouse.KindSettings), p.Settings); err != nil {
		return err
	}
	doc := reflect.ValueOf(full(p))
	for i, k := range gatehouse.Kinds[1:] {
		list := doc.Field(i + 1)
		order := make([]int, list.Len())
		for j := range order {
			order[j] = j
		}
		if k != gatehouse.KindPlan {
			ids := make([]string, list.Len())
			for j := range ids {
				ids[j] = objectID(k, list.Index(j).Addr().Interface())
			}
			sort.SliceStable(order, func(a, b int) bool { return ids[order[a]] < ids[order[b]] })
		}
		for _, j := range order {
			if err := line(string(k), list.Index(j).Addr().Interface()); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

// objectID is the id the store keys an object of kind by (see
// gatehouse.Policy.Objects), which orders a section.
func objectID(kind gatehouse.Kind, v any) string {
	switch x := v.(type) {
	case *gatehouse.Permission:
		return x.Name
	case *gatehouse.Bundle:
		return x.Name
	case *gatehouse.Category:
		return x.Name
	case *gatehouse.Role:
		return x.Name
	case *gatehouse.Tenant:
		return x.ID
	case *gatehouse.UserEntry:
		return x.Email
	case *gatehouse.Agent:
		return x.ID
	case *gatehouse.Tool:
		return x.Name
	case *gatehouse.ActionType:
		return x.Name
	case *gatehouse.ResourceEntry:
		return x.Key()
	}
	panic(fmt.Sprintf("policy: no id for %s", kind))
}
