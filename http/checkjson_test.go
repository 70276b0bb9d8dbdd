package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkJSONByTokens is checkJSON as encoding/json's tokenizer would
// implement it: the oracle checkJSON's byte scan must agree with.
func checkJSONByTokens(body []byte) (message, key string) {
	if !utf8.Valid(body) || !json.Valid(body) {
		return "error.bad_json", ""
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var keys []map[string]bool
	wantKey := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return "", ""
		}
		if err != nil {
			return "error.bad_json", ""
		}
		inObject := len(keys) > 0 && keys[len(keys)-1] != nil
		if k, ok := tok.(string); ok && inObject && wantKey {
			for prior := range keys[len(keys)-1] {
				switch {
				case prior == k:
					return "error.duplicate_key", k
				case strings.EqualFold(prior, k):
					return "error.case_variant_key", k
				}
			}
			keys[len(keys)-1][k] = true
			wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(keys) == maxJSONDepth {
				return "error.too_deep", ""
			}
			var m map[string]bool
			if tok == json.Delim('{') {
				m = map[string]bool{}
			}
			keys = append(keys, m)
		case json.Delim('}'), json.Delim(']'):
			keys = keys[:len(keys)-1]
		}
		wantKey = len(keys) > 0 && keys[len(keys)-1] != nil
	}
}

// checkJSONResult is what checkJSON said: the message id and the repeated key.
func checkJSONResult(body []byte) (message, key string) {
	err := checkJSON(body)
	if err == nil {
		return "", ""
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != "invalid" {
		return "not an invalid error: " + err.Error(), ""
	}
	k, _ := e.Data["Key"].(string)
	return e.messageID(), k
}

var checkJSONCases = []struct {
	body, message, key string
}{
	{`{}`, "", ""},
	{` {"a": 1, "b": [1, {"a": 2}], "c": {"a": {"a": 3}}} `, "", ""},
	{`{"a": 1, "a": 2}`, "error.duplicate_key", "a"},
	{`{"a": {"b": 1, "b": 2}}`, "error.duplicate_key", "b"},
	{`{"a": [{"k": "v", "k": "w"}]}`, "error.duplicate_key", "k"},
	{`{"a": 1, "\u0061": 2}`, "error.duplicate_key", "a"},
	{`{"a\"b": 1, "a\u0022b": 2}`, "error.duplicate_key", `a"b`},
	{`{"": 1, "": 2}`, "error.duplicate_key", ""},
	{`{"tool": 1, "TOOL": 2}`, "error.case_variant_key", "TOOL"},
	{`{"k": 1, "\u212a": 2}`, "error.case_variant_key", "\u212a"},
	{`{"k": "a", "v": "a"}`, "", ""},
	{`{"a": {"x": 1}, "b": {"x": 1}}`, "", ""},
	{`{"a": "{\"a\": 1, \"a\": 2}"}`, "", ""},
	{`["a", "a", {"a": 1}]`, "", ""},
	{`{"a": 1,}`, "error.bad_json", ""},
	{`{"a": 1} {"b": 2}`, "error.bad_json", ""},
	{`{"a": 1`, "error.bad_json", ""},
	{"{\"a\": \"\xff\"}", "error.bad_json", ""},
	{``, "error.bad_json", ""},
	{`{"a": ` + strings.Repeat(`[`, maxJSONDepth-1) + strings.Repeat(`]`, maxJSONDepth-1) + `}`, "", ""},
	{`{"a": ` + strings.Repeat(`[`, maxJSONDepth) + strings.Repeat(`]`, maxJSONDepth) + `}`, "error.too_deep", ""},
	{manyKeys(40, false), "", ""},
	{manyKeys(40, true), "error.duplicate_key", "k0"},
	{manyKeys(40, false)[:len(manyKeys(40, false))-1] + `, "K0": 2}`, "error.case_variant_key", "K0"},
}

// manyKeys is an object of n keys, past keysBeforeSet; repeated adds k0 again.
func manyKeys(n int, repeated bool) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k` + string(rune('0'+i%10)) + strings.Repeat("x", i/10) + `": 1`)
	}
	if repeated {
		b.WriteString(`, "k0": 2`)
	}
	b.WriteString("}")
	return b.String()
}

func TestCheckJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range checkJSONCases {
		message, key := checkJSONResult([]byte(tc.body))
		if message != tc.message || key != tc.key {
			t.Errorf("checkJSON(%.60q) = %q key %q, want %q key %q", tc.body, message, key, tc.message, tc.key)
		}
		if wm, wk := checkJSONByTokens([]byte(tc.body)); wm != tc.message || wk != tc.key {
			t.Errorf("checkJSONByTokens(%.60q) = %q key %q, want %q key %q", tc.body, wm, wk, tc.message, tc.key)
		}
	}
}

// FuzzCheckJSON: the byte scan and the tokenizer agree on every input.
func FuzzCheckJSON(f *testing.F) {
	for _, tc := range checkJSONCases {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		message, key := checkJSONResult(body)
		wm, wk := checkJSONByTokens(body)
		if message != wm || key != wk {
			t.Fatalf("checkJSON(%q) = %q key %q, the tokenizer says %q key %q", body, message, key, wm, wk)
		}
	})
}

// BenchmarkCheckJSON checks a typical AuthZEN evaluation body.
func BenchmarkCheckJSON(b *testing.B) {
	body := []byte(`{"subject":{"type":"user","id":"sara@acme.example","properties":{"department":"loans"}},` +
		`"action":{"name":"analyze_loan"},"resource":{"type":"tenant","id":"acme"},"context":{"time":"2026-11-23T10:00:00Z"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := checkJSON(body); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzDecodeStrict checks the native API's decoder: it never panics, and a
// body it accepts has no key repeated in any case and no key that is not a
// field, so encoding/json reads it the same with or without case folding.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{`{"tool": "analyze_loan", "tenant": "acme"}`, `{"tool": "a", "tool": "b"}`, `{"TOOL": "a"}`,
		`{"tool": "a", "Tool": "b"}`, `{"tool": "process_refund", "args": {"amount": "500.00", "amount": "1.00"}}`,
		`{"context": {"k": 1, "\u212a": 2}}`, `{"tennant": "x"}`, `[]`, `{"tool": "a"} {}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in checkRequest
		if decodeStrict(body, &in) != nil {
			return
		}
		if err := checkJSON(body); err != nil {
			t.Fatalf("decodeStrict accepted %q, which checkJSON refuses: %v", body, err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("decodeStrict accepted %q, not an object: %v", body, err)
		}
		fields := jsonFields(reflect.TypeFor[checkRequest]())
		for k := range m {
			if _, ok := fields[k]; !ok {
				t.Fatalf("decodeStrict accepted %q with the key %q", body, k)
			}
		}
	})
}
