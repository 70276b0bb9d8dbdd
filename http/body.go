package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"
)

// readBody returns r's body after checking that it is declared JSON (415)
// and fits Config.MaxBodyBytes (413). It does not parse it.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, &Error{Code: CodeUnsupportedMediaType, Err: fmt.Errorf("content type %q", ct)}
		}
	}
	return readLimited(w, r, s.cfg.MaxBodyBytes, "")
}

// readLimited reads r's body of at most max bytes; a larger one is the 413
// payload_too_large, with message (error.payload_too_large when empty)
// naming max.
func readLimited(w http.ResponseWriter, r *http.Request, max int64, message string) ([]byte, error) {
	tooLarge := func(err error) error {
		return &Error{Code: CodePayloadTooLarge, Message: message, Data: map[string]any{"Max": max}, Err: err}
	}
	if r.ContentLength > max {
		return nil, tooLarge(fmt.Errorf("content length %d", r.ContentLength))
	}
	body, err := readAll(http.MaxBytesReader(w, r.Body, max), r.ContentLength)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(err)
		}
		return nil, invalid("error.bad_json", nil).wrap(fmt.Errorf("read body: %w", err))
	}
	return body, nil
}

// readAll reads r to its end into one allocation when the request said
// its length (n > 0), as io.ReadAll does otherwise.
func readAll(r io.Reader, n int64) ([]byte, error) {
	if n <= 0 {
		return io.ReadAll(r)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	// net/http ends a body at its Content-Length; anything else is an error.
	if _, err := r.Read(make([]byte, 1)); err != io.EOF {
		return nil, fmt.Errorf("body longer than its content length (%v)", err)
	}
	return body, nil
}

// decodeStrict decodes body, one JSON object, into v: the one decoder of
// every JSON body of the native API. It refuses what checkJSON refuses (a
// key repeated, also in another case, anywhere, so the amount a tool reads
// is the amount Gatehouse checked), trailing data, and any key that is not
// exactly the name of a field of v (encoding/json alone would match "TOOL"
// to tool). AuthZEN requests ignore unknown fields instead (see
// parseObject).
func decodeStrict(body []byte, v any) error {
	if first(body) != '{' {
		return invalid("error.bad_json", nil).wrap(errors.New("body is not a JSON object"))
	}
	if err := checkJSON(body); err != nil {
		return err
	}
	if err := exactKeys(body, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("error.bad_json", nil).wrap(errors.New("trailing data after the JSON object"))
	}
	return nil
}

// jsonError turns a decoding error into the 400 that names the field, if
// encoding/json knows it.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return invalid("error.wrong_type", map[string]any{"Field": te.Field}).wrap(err)
	}
	return invalid("error.bad_json", nil).wrap(err)
}

// maxJSONDepth bounds how deeply a request body may nest objects and arrays.
const maxJSONDepth = 64

// checkJSON rejects what encoding/json would accept silently: bytes that
// are not UTF-8, a key repeated within one object (which parsers resolve
// differently, so a PEP and Gatehouse could read different requests), and
// nesting deeper than maxJSONDepth. It also rejects malformed JSON and more
// than one top-level value. It runs on every AuthZEN request, so it scans
// the bytes once after json.Valid instead of decoding tokens, and compares
// keys in place unless they contain escapes.
func checkJSON(body []byte) error {
	_, err := scanJSON(body)
	return err
}

// scanJSON is checkJSON, and reports whether the body is plain: every key
// of the top-level object and of the objects directly in it consists of
// a–z and '_' only. encoding/json matches such keys to lowercase field tags
// exactly as a case-sensitive decoder would, so a plain body may be
// decoded into a struct (see decodePlain).
func scanJSON(body []byte) (plain bool, err error) {
	if !utf8.Valid(body) {
		return false, invalid("error.bad_json", nil).wrap(errors.New("body is not UTF-8"))
	}
	if !json.Valid(body) {
		var v any
		return false, invalid("error.bad_json", nil).wrap(json.Unmarshal(body, &v))
	}
	plain = true
	// body is one valid JSON value, so a string is a key exactly when the
	// innermost container is an object and the byte before it is '{' or ','.
	var (
		frames = make([]jsonFrame, 0, 8)
		keys   = make([][]byte, 0, 16)
		prev   byte
	)
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{', '[':
			if len(frames) == maxJSONDepth {
				return false, invalid("error.too_deep", map[string]any{"Max": maxJSONDepth}).wrap(errors.New("nesting too deep"))
			}
			frames = append(frames, jsonFrame{object: c == '{', firstKey: len(keys)})
		case '}', ']':
			keys = keys[:frames[len(frames)-1].firstKey]
			frames = frames[:len(frames)-1]
		case '"':
			end := stringEnd(body, i)
			if len(frames) > 0 && frames[len(frames)-1].object && (prev == '{' || prev == ',') {
				key := body[i+1 : end]
				if bytes.IndexByte(key, '\\') >= 0 {
					var k string
					if err := json.Unmarshal(body[i:end+1], &k); err != nil {
						return false, invalid("error.bad_json", nil).wrap(err)
					}
					key = []byte(k)
				}
				if plain && len(frames) <= 2 {
					plain = plainKey(key)
				}
				f := &frames[len(frames)-1]
				if prior, ok := f.repeats(keys[f.firstKey:], key); ok {
					if prior != string(key) {
						return false, invalid("error.case_variant_key", map[string]any{"Key": string(key)}).
							wrap(fmt.Errorf("key %q repeats %q in another case", key, prior))
					}
					return false, invalid("error.duplicate_key", map[string]any{"Key": string(key)}).wrap(fmt.Errorf("key %q repeated", key))
				}
				keys = append(keys, key)
			}
			i = end
		}
		prev = c
	}
	return plain, nil
}

// plainKey reports whether key consists of a–z and '_' only.
func plainKey(key []byte) bool {
	for _, c := range key {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// jsonFrame is an open object or array of checkJSON. An object's keys are
// keys[firstKey:]; past keysBeforeSet of them a set takes over, so that an
// object with many keys is not checked in quadratic time.
type jsonFrame struct {
	object   bool
	firstKey int
	set      map[string]string // folded key → the key as first written
}

const keysBeforeSet = 16

// repeats reports whether key, or a case variant of it, is among seen, the
// keys before it in f, and returns that earlier key; it adds key to f's
// set once f has one. A case variant counts as a repeat: parsers that
// match keys case-insensitively (encoding/json among them) would read one
// of the two.
func (f *jsonFrame) repeats(seen [][]byte, key []byte) (prior string, ok bool) {
	if f.set == nil && len(seen) < keysBeforeSet {
		for _, k := range seen {
			if bytes.EqualFold(k, key) {
				return string(k), true
			}
		}
		return "", false
	}
	if f.set == nil {
		f.set = make(map[string]string, 2*keysBeforeSet)
		for _, k := range seen {
			f.set[foldKey(k)] = string(k)
		}
	}
	fk := foldKey(key)
	if k, ok := f.set[fk]; ok {
		return k, true
	}
	f.set[fk] = string(key)
	return "", false
}

// foldKey maps key to one representative of the keys bytes.EqualFold
// finds equal to it: each rune replaced by the smallest of its simple
// case-folding orbit.
func foldKey(key []byte) string {
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, string(key))
}

// exactKeys refuses a key of data, a JSON value checked by checkJSON, that
// is not exactly the JSON name of a field of the struct t (or what t points
// to, holds or maps to) at its place. Values of interface type, raw JSON
// and types that decode themselves are not looked into.
func exactKeys(data []byte, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawMessageType || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if first(data) != '{' {
			return nil
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(data, &m) != nil {
			return nil
		}
		fields := jsonFields(t)
		for key, raw := range m {
			ft, ok := fields[key]
			if !ok {
				return invalid("error.unknown_key", map[string]any{"Key": key, "Field": key}).wrap(fmt.Errorf("unknown key %q", key))
			}
			if err := exactKeys(raw, ft); err != nil {
				return err
			}
		}
	case reflect.Map:
		var m map[string]json.RawMessage
		if first(data) != '{' || json.Unmarshal(data, &m) != nil {
			return nil
		}
		for _, raw := range m {
			if err := exactKeys(raw, t.Elem()); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		var items []json.RawMessage
		if first(data) != '[' || json.Unmarshal(data, &items) != nil {
			return nil
		}
		for _, raw := range items {
			if err := exactKeys(raw, t.Elem()); err != nil {
				return err
			}
		}
	}
	return nil
}

var (
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// jsonFields maps the JSON names of struct t's fields, those of embedded
// structs included, to their types, as encoding/json names them.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				continue // its fields are visible fields of t
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, taken := fields[name]; !taken || len(f.Index) == 1 {
			fields[name] = f.Type
		}
	}
	return fields
}

// stringEnd returns the index of the quote that closes the string opening
// at body[start], in valid JSON.
func stringEnd(body []byte, start int) int {
	for i := start + 1; i < len(body); i++ {
		switch body[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return len(body) - 1
}

// first returns the first byte of data that is not JSON whitespace, or 0.
func first(data []byte) byte {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

// Field problems of a request body; the field is named as a JSON path.
func missingField(path string) error {
	return invalid("error.missing_field", map[string]any{"Field": path})
}

func wrongType(path, want string) error {
	return invalid("error.field_not_"+want, map[string]any{"Field": path})
}

// isNull reports whether raw is absent or the JSON literal null; AuthZEN
// asks senders to omit nulls, so a null reads as absent.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// parseObject decodes raw as a JSON object whose members stay raw; unknown
// members are kept and ignored by the caller. Absent or null is (nil, nil).
func parseObject(raw json.RawMessage, path string) (map[string]json.RawMessage, error) {
	if isNull(raw) {
		return nil, nil
	}
	if first(raw) != '{' {
		return nil, wrongType(path, "object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, invalid("error.bad_json", nil).wrap(err)
	}
	return m, nil
}

// parseAny decodes raw as a JSON object of any values, as CEL conditions
// read them. Absent or null is nil.
func parseAny(raw json.RawMessage, path string) (map[string]any, error) {
	if isNull(raw) {
		return nil, nil
	}
	if first(raw) != '{' {
		return nil, wrongType(path, "object")
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, invalid("error.bad_json", nil).wrap(err)
	}
	return m, nil
}

// requiredString returns the non-empty string member key of m.
func requiredString(m map[string]json.RawMessage, key, path string) (string, error) {
	raw := m[key]
	if isNull(raw) {
		return "", missingField(path)
	}
	if first(raw) != '"' {
		return "", wrongType(path, "string")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalid("error.bad_json", nil).wrap(err)
	}
	if s == "" {
		return "", missingField(path)
	}
	return s, nil
}
