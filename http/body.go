package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"unicode/utf8"
)

// readBody returns r's body after checking that it is declared JSON (415)
// and fits Config.MaxBodyBytes (413). It does not parse it.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, &Error{Code: CodeUnsupportedMediaType, Err: fmt.Errorf("content type %q", r.Header.Get("Content-Type"))}
	}
	tooLarge := &Error{Code: CodePayloadTooLarge, Data: map[string]any{"Max": s.cfg.MaxBodyBytes}}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		tooLarge.Err = fmt.Errorf("content length %d", r.ContentLength)
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			tooLarge.Err = err
			return nil, tooLarge
		}
		return nil, invalid("error.bad_json", nil).wrap(fmt.Errorf("read body: %w", err))
	}
	return body, nil
}

// decodeStrict decodes body, one JSON object, into v, refusing unknown
// fields and trailing data: the native API's rule. AuthZEN requests ignore
// unknown fields instead (see parseObject).
func decodeStrict(body []byte, v any) error {
	if first(body) != '{' {
		return invalid("error.bad_json", nil).wrap(errors.New("body is not a JSON object"))
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
// nesting deeper than maxJSONDepth. It also rejects malformed JSON.
func checkJSON(body []byte) error {
	if !utf8.Valid(body) {
		return invalid("error.bad_json", nil).wrap(errors.New("body is not UTF-8"))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	// keys holds, per open container, the keys seen (nil for an array);
	// wantKey says whether the next token of the innermost object is a key.
	var keys []map[string]bool
	wantKey := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return invalid("error.bad_json", nil).wrap(err)
		}
		inObject := len(keys) > 0 && keys[len(keys)-1] != nil
		if k, ok := tok.(string); ok && inObject && wantKey {
			if keys[len(keys)-1][k] {
				return invalid("error.duplicate_key", map[string]any{"Key": k}).wrap(fmt.Errorf("key %q repeated", k))
			}
			keys[len(keys)-1][k] = true
			wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(keys) == maxJSONDepth {
				return invalid("error.too_deep", map[string]any{"Max": maxJSONDepth}).wrap(errors.New("nesting too deep"))
			}
			if tok == json.Delim('{') {
				keys = append(keys, map[string]bool{})
			} else {
				keys = append(keys, nil)
			}
		case json.Delim('}'), json.Delim(']'):
			keys = keys[:len(keys)-1]
		}
		// After a value inside an object, a key comes next.
		wantKey = len(keys) > 0 && keys[len(keys)-1] != nil
	}
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
