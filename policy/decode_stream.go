package policy

import (
	"bytes"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// A document whose top level is a mapping is decoded an entry at a time,
// and the value of a list entry an item at a time, as it is read: the node
// tree of one item exists at once, not that of the whole document, so a
// large document's parse holds the decoded policy and little else (a whole
// tree took several times the document's size and made the collector's
// work grow faster than the document). The decoding is the same as
// decoding the whole tree (decoder.decode at the root, pairs over its
// entries): the same values visited in the same order, with the same
// problems, positions and sections. A document the streaming cannot read
// (invalid JSON, YAML it does not split, see yamlPlan) is decoded from its
// whole tree instead, which also gives its syntax error.

// rootStream decodes a struct from its mapping's entries, given one at a
// time, as decoder.decode does from the whole mapping.
type rootStream struct {
	d      *decoder
	v      reflect.Value
	fields *structFields
	first  map[string]int
	// skip is set when decode's prologue refused the root (the value
	// budget is spent): its entries are read but not decoded.
	skip bool
	// back is the path length to cut back to after the current entry.
	back int
	// list holds the items of a list entry decoded so far, n of them;
	// field is where the list goes, listing whether one is being read.
	field   reflect.Value
	list    reflect.Value
	n       int
	listing bool
}

// streamable reports whether v, a pointer, can be decoded by rootStream.
func streamable(v any) bool {
	t := reflect.TypeOf(v)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct && t.Elem() != decimalType
}

// begin starts decoding root, a mapping, into v (a struct), as decode's
// prologue does.
func (d *decoder) begin(root *yaml.Node, v reflect.Value) *rootStream {
	d.root = root
	st := &rootStream{d: d, v: v, fields: fieldsOf(v.Type()), first: map[string]int{}}
	if d.pos != nil {
		if _, seen := d.pos[string(d.path)]; !seen {
			d.pos[d.at()] = position{root.Line, root.Column}
		}
	}
	_, ok := d.enter(root, 0)
	st.skip = !ok
	return st
}

// key starts the entry of key node k, as pairs and decode's struct case
// do; it returns the field the entry's value is to be decoded into, and
// false when the value is not to be decoded. Every entry, decoded or not,
// is ended by end.
func (st *rootStream) key(k *yaml.Node) (reflect.Value, bool) {
	d := st.d
	st.back = len(d.path)
	if st.skip {
		return reflect.Value{}, false
	}
	if k.Kind == yaml.AliasNode && k.Alias != nil {
		k = k.Alias
	}
	switch {
	case k.Kind != yaml.ScalarNode:
		d.fail(k, "want a string key, got %s", describe(k))
		return reflect.Value{}, false
	case k.ShortTag() == tagMerge:
		d.fail(k, "merge keys (<<) are not supported")
		return reflect.Value{}, false
	}
	st.back = d.key(k.Value)
	if line, dup := st.first[k.Value]; dup {
		d.fail(k, "duplicate key %q (first at line %d)", k.Value, line)
		return reflect.Value{}, false
	}
	st.first[k.Value] = k.Line
	d.sections = append(d.sections, k.Value)
	i, ok := st.fields.index[k.Value]
	if !ok {
		d.fail(k, "unknown key %q%s", k.Value, suggest(k.Value, st.fields.names))
		return reflect.Value{}, false
	}
	return st.v.Field(i), true
}

// value decodes the whole value of the entry into field.
func (st *rootStream) value(n *yaml.Node, field reflect.Value) {
	st.d.decode(n, field, 1)
}

// streams reports whether the value of an entry decoded into field, when
// it is a list, can be given an item at a time (listStart, item, end).
func streams(field reflect.Value) bool {
	return field.Kind() == reflect.Slice && field.Type() != decimalType
}

// listStart starts the list seq (without its items) as the value of the
// entry, into field; its items follow by item.
func (st *rootStream) listStart(seq *yaml.Node, field reflect.Value) {
	d := st.d
	if d.pos != nil {
		if _, seen := d.pos[string(d.path)]; !seen {
			d.pos[d.at()] = position{seq.Line, seq.Column}
		}
	}
	if _, ok := d.enter(seq, 1); !ok {
		return
	}
	st.field, st.list, st.n, st.listing = field, reflect.MakeSlice(field.Type(), 0, 16), 0, true
}

// item decodes the next item of the list being read.
func (st *rootStream) item(n *yaml.Node) {
	if !st.listing {
		return
	}
	if st.n == st.list.Len() {
		grown := reflect.MakeSlice(st.list.Type(), max(2*st.n, 16), max(2*st.n, 16))
		reflect.Copy(grown, st.list)
		st.list = grown
	}
	d := st.d
	back := d.index(st.n)
	d.decode(n, st.list.Index(st.n), 2)
	d.path = d.path[:back]
	st.n++
}

// end ends the current entry, setting the list it read, if any, to
// exactly its items.
func (st *rootStream) end() {
	if st.listing {
		s := reflect.MakeSlice(st.list.Type(), st.n, st.n)
		reflect.Copy(s, st.list)
		st.field.Set(s)
		st.field, st.list, st.listing = reflect.Value{}, reflect.Value{}, false
	}
	st.d.path = st.d.path[:st.back]
}

// stream decodes the JSON document s reads, an object, through st; it
// reports false, having decoded part of it, if the document is not valid
// JSON (as json.Valid says). Each entry's value, and each item of a list,
// is scanned into nodes that are reused once it is decoded.
func (s *jsonScanner) stream(st func(root *yaml.Node) *rootStream) bool {
	if !s.more() || s.data[s.off] != '{' {
		return false
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: tagMap, Line: s.line, Column: s.col}
	r := st(root)
	s.skip(1)
	if !s.more() {
		return false
	}
	if s.data[s.off] == '}' {
		s.skip(1)
		s.space()
		return s.off == len(s.data)
	}
	for {
		if !s.more() || s.data[s.off] != '"' {
			return false
		}
		k, ok := s.value(1)
		if !ok || !s.more() || s.data[s.off] != ':' {
			return false
		}
		s.skip(1)
		field, decode := r.key(k)
		if !s.more() {
			return false
		}
		if decode && s.data[s.off] == '[' && streams(field) {
			if !s.list(r, field) {
				return false
			}
		} else {
			v, ok := s.value(1)
			if !ok {
				return false
			}
			if decode {
				r.value(v, field)
			}
		}
		r.end()
		s.nodes = s.nodes[:0]
		if !s.more() {
			return false
		}
		switch s.data[s.off] {
		case ',':
			s.skip(1)
		case '}':
			s.skip(1)
			s.space()
			return s.off == len(s.data)
		default:
			return false
		}
	}
}

// list reads the list at s.off, the value of an entry of the top-level
// object, decoding each item into field as it is scanned.
func (s *jsonScanner) list(r *rootStream, field reflect.Value) bool {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: tagSeq, Line: s.line, Column: s.col}
	r.listStart(seq, field)
	s.skip(1)
	if !s.more() {
		return false
	}
	if s.data[s.off] == ']' {
		s.skip(1)
		return true
	}
	for {
		v, ok := s.value(2)
		if !ok || !s.more() {
			return false
		}
		r.item(v)
		s.nodes = s.nodes[:0]
		switch s.data[s.off] {
		case ',':
			s.skip(1)
		case ']':
			s.skip(1)
			return true
		default:
			return false
		}
	}
}

// yamlEntry is one entry of a YAML document's top-level block mapping,
// by lines: start is the key's line (0-based offsets into the document's
// lines); a list entry ("key:" alone on its line, then "- " items) has its
// items in chunks of whole items, parsed one chunk at a time.
type yamlEntry struct {
	start, end int
	// chunks, for a list entry, are the first lines of each chunk of
	// items, the last one ending at end.
	chunks []int
}

// yamlChunk is about the size in bytes of a chunk of list items parsed
// at once: large enough that setting up the parser is paid rarely, small
// enough that its node tree stays small.
const yamlChunk = 32 << 10

// yamlPlan splits a YAML document into its top-level entries, and list
// entries into chunks of items, by lines, without parsing it. It reports
// false for a document it does not split, which is decoded whole: one
// whose top level is not a block mapping with keys at column 0 only
// (directives, document markers, flow or complex keys, lines in
// unexpected places), or whose lines YAML would count otherwise (\r alone,
// NEL, LS, PS, a byte-order mark). A split is only a guess: each part is
// parsed on its own, and any part that does not parse as one entry, or one
// list of items, makes the whole document decode from its tree.
func yamlPlan(data []byte) ([]yamlEntry, []int, bool) {
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) || bytes.Contains(data, []byte("\xc2\x85")) ||
		bytes.Contains(data, []byte("\xe2\x80\xa8")) || bytes.Contains(data, []byte("\xe2\x80\xa9")) {
		return nil, nil, false
	}
	for i := bytes.IndexByte(data, '\r'); i >= 0; i = bytes.IndexByte(data[i+1:], '\r') + i + 1 {
		if i+1 >= len(data) || data[i+1] != '\n' {
			return nil, nil, false
		}
		if bytes.IndexByte(data[i+1:], '\r') < 0 {
			break
		}
	}
	// starts[i] is the offset of line i; a last line without a newline
	// counts too.
	var starts []int
	for off := 0; off < len(data); {
		starts = append(starts, off)
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			break
		}
		off += nl + 1
	}
	line := func(i int) []byte {
		end := len(data)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		return bytes.TrimRight(data[starts[i]:end], "\r\n")
	}
	// blank reports an empty or comment-only line.
	blank := func(l []byte) bool {
		t := bytes.TrimLeft(l, " ")
		return len(t) == 0 || t[0] == '#'
	}
	var entries []yamlEntry
	for i := range starts {
		l := line(i)
		if blank(l) {
			continue
		}
		if bytes.HasPrefix(l, []byte("---")) || bytes.HasPrefix(l, []byte("...")) {
			return nil, nil, false
		}
		switch c := l[0]; c {
		case ' ', '-':
			if len(entries) == 0 {
				return nil, nil, false
			}
			continue
		case '\t', '%', '?', ':', '[', '{', '&', '*', '!', '|', '>', '"', '\'', '@', '`':
			return nil, nil, false
		}
		if len(entries) > 0 {
			entries[len(entries)-1].end = i
		}
		entries = append(entries, yamlEntry{start: i})
	}
	if len(entries) == 0 {
		return nil, nil, false
	}
	entries[len(entries)-1].end = len(starts)
	for e := range entries {
		entries[e].chunks = listChunks(entries[e], line, blank, starts)
	}
	return entries, starts, true
}

// listChunks splits the items of entry e, when it is a list entry ("key:"
// and at most a comment on its line, then items "- " all at one
// indentation with nothing less indented among them), into chunks of
// about yamlChunk bytes; nil when it is not a list entry.
func listChunks(e yamlEntry, line func(int) []byte, blank func([]byte) bool, starts []int) []int {
	first := -1
	for i := e.start + 1; i < e.end; i++ {
		if !blank(line(i)) {
			first = i
			break
		}
	}
	if first < 0 {
		return nil
	}
	l := line(first)
	indent := len(l) - len(bytes.TrimLeft(l, " "))
	isItem := func(l []byte) bool {
		return len(l) > indent && l[indent] == '-' && (len(l) == indent+1 || l[indent+1] == ' ')
	}
	if !isItem(l) {
		return nil
	}
	chunks := []int{first}
	for i := first + 1; i < e.end; i++ {
		l := line(i)
		if blank(l) {
			continue
		}
		in := len(l) - len(bytes.TrimLeft(l, " "))
		if in < indent || l[in] == '\t' {
			return nil
		}
		if in == indent && isItem(l) && starts[i]-starts[chunks[len(chunks)-1]] >= yamlChunk {
			chunks = append(chunks, i)
		}
	}
	return chunks
}

// streamYAML decodes data, split by yamlPlan, through st; it reports
// false, having decoded part of it, when a part does not parse on its own
// as what the split took it for.
func streamYAML(data []byte, entries []yamlEntry, starts []int, st func(root *yaml.Node) *rootStream) bool {
	text := func(from, to int) []byte {
		end := len(data)
		if to < len(starts) {
			end = starts[to]
		}
		return data[starts[from]:end]
	}
	var r *rootStream
	for _, e := range entries {
		head := e.end
		if e.chunks != nil {
			head = e.start + 1
		}
		n, ok := yamlPart(text(e.start, head), e.start)
		if !ok || n.Kind != yaml.MappingNode || len(n.Content) != 2 {
			return false
		}
		if r == nil {
			r = st(n)
		}
		k, v := n.Content[0], n.Content[1]
		if e.chunks != nil && (v.Kind != yaml.ScalarNode || v.Tag != tagNull || v.Value != "" || v.Style != 0 || v.Anchor != "") {
			return false
		}
		field, decode := r.key(k)
		switch {
		case e.chunks == nil:
			if decode {
				r.value(v, field)
			}
		case decode && streams(field):
			for c, from := range e.chunks {
				to := e.end
				if c+1 < len(e.chunks) {
					to = e.chunks[c+1]
				}
				seq, ok := yamlPart(text(from, to), from)
				if !ok || seq.Kind != yaml.SequenceNode {
					return false
				}
				if c == 0 {
					r.listStart(seq, field)
				}
				for _, item := range seq.Content {
					r.item(item)
				}
			}
		default:
			// Not decoded item by item: parsed, and if decoded, whole.
			var list *yaml.Node
			for c, from := range e.chunks {
				to := e.end
				if c+1 < len(e.chunks) {
					to = e.chunks[c+1]
				}
				seq, ok := yamlPart(text(from, to), from)
				if !ok || seq.Kind != yaml.SequenceNode {
					return false
				}
				if list == nil {
					list = seq
				} else {
					list.Content = append(list.Content, seq.Content...)
				}
			}
			if decode {
				r.value(list, field)
			}
		}
		r.end()
	}
	return true
}

// yamlPart parses part of a document, starting at its line first
// (0-based), as a YAML document of its own, with the lines its nodes have
// in the whole document.
func yamlPart(part []byte, first int) (*yaml.Node, bool) {
	var doc yaml.Node
	if err := yaml.Unmarshal(part, &doc); err != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, false
	}
	n := doc.Content[0]
	if first > 0 {
		shiftLines(n, first)
	}
	return n, true
}

// shiftLines adds by to the line of n and every node below it.
func shiftLines(n *yaml.Node, by int) {
	n.Line += by
	for _, c := range n.Content {
		shiftLines(c, by)
	}
}
