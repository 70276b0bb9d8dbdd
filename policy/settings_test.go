package policy

import (
	"errors"
	"strings"
	"testing"
)

// settings.subject_types maps the application's subject types onto user
// or agent; a bad entry is a problem at its line.
func TestSubjectTypesSetting(t *testing.T) {
	doc, err := Parse("p.yaml", []byte("settings:\n  subject_types:\n    identity: user\n    service: agent\n"))
	if err != nil {
		t.Fatalf("Parse = %v", err)
	}
	if got := doc.Policy.Settings.SubjectTypes; len(got) != 2 || got["identity"] != "user" || got["service"] != "agent" {
		t.Errorf("subject_types = %v", got)
	}
	for _, tt := range []struct {
		name, src, want string
		line            int
	}{
		{"bad kind", "settings:\n  subject_types:\n    identity: user\n    service: robot\n", `"service" maps to "robot": want user or agent`, 4},
		{"built in", "settings:\n  subject_types:\n    user: agent\n", `"user" is built in`, 3},
		{"not a mapping", "settings:\n  subject_types: [identity]\n", "want a mapping", 2},
	} {
		_, err := Parse("p.yaml", []byte(tt.src))
		var perr *Error
		if !errors.As(err, &perr) || len(perr.Problems) != 1 {
			t.Errorf("%s: Parse = %v, want one problem", tt.name, err)
			continue
		}
		if p := perr.Problems[0]; !strings.Contains(p.Message, tt.want) || p.Line != tt.line {
			t.Errorf("%s: problem %s, want line %d mentioning %q", tt.name, p, tt.line, tt.want)
		}
	}
}
