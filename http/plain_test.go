package http

import (
	"reflect"
	"testing"
)

// FuzzPlainEvaluation: whatever the one-pass decoder accepts, the
// member-by-member parser reads the same way.
func FuzzPlainEvaluation(f *testing.F) {
	for _, seed := range []string{
		`{"subject":{"type":"user","id":"sara@acme.example","properties":{"department":"loans"}},"action":{"name":"analyze_loan"},"resource":{"type":"tenant","id":"acme"},"context":{"time":"now"}}`,
		`{"subject":{"type":"user","id":"a"},"action":{"name":"n","properties":{}},"resource":{"type":"t","id":"i","properties":null},"context":null,"other":[1]}`,
		`{"Subject":{"type":"user","id":"a"},"action":{"name":"n"},"resource":{"type":"t","id":"i"}}`,
		`{"ſubject":{"type":"user","id":"a"},"subject":{"type":"user","id":"b"},"action":{"name":"n"},"resource":{"type":"t","id":"i"}}`,
		`{"subject":{"type":"user","ID":"a","id":"b"},"action":{"name":"n"},"resource":{"type":"t","id":"i"}}`,
		`{"subject":{"type":"user","id":5},"action":{"name":"n"},"resource":{"type":"t","id":"i"}}`,
		`{"subject":{"type":"user","id":"\u00e9\ud800"},"action":{"name":"n"},"resource":{"type":"t","id":"i"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		plain, err := scanJSON(body)
		if err != nil || first(body) != '{' {
			return
		}
		fast, ok := decodePlain(body, plain)
		if !ok {
			return
		}
		slow, err := parseEvaluationMembers(body)
		if err != nil {
			t.Fatalf("decodePlain(%q) accepted what the member parser refuses: %v", body, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("decodePlain(%q) = %+v, the member parser reads %+v", body, fast, slow)
		}
	})
}

// Keys that encoding/json would match to a field case-insensitively keep
// a body off the one-pass decoder.
func TestPlainKeys(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]bool{
		`{"subject":{"type":"user","id":"a","properties":{"OwnerID":"x"}},"context":{"snake_case":1}}`: true,
		`{"Subject":{}}`:                false,
		`{"subject":{"Type":"user"}}`:   false,
		`{"ſubject":{}}`:                false,
		`{"subject":{"\u0074ype":"x"}}`: true,
		`{"subject":{"\u0054ype":"x"}}`: false,
		`{"context":{"tenant-id":"x"}}`: false,
		`{"subject":{"type":"user"}}`:   true,
	} {
		plain, err := scanJSON([]byte(body))
		if err != nil || plain != want {
			t.Errorf("scanJSON(%s) = %v, %v; want plain %v", body, plain, err, want)
		}
	}
}
