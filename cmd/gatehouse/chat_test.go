package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// The chat's configuration files are checked when serve starts.
func TestChatConfigFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("tools.yaml", `
demo: true
http:
  - url: http://127.0.0.1:9/run
    timeout: 2s
    tools: [{name: lookup, description: Look up, parameters: {type: object}}]
`)
	x, err := chatExecutor(good)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(x.Tools()); n != 13 {
		t.Errorf("%d tools, want the 12 demo tools and lookup", n)
	}
	for name, text := range map[string]string{
		"empty.yaml":   "demo: false\n",
		"unknown.yaml": "demo: true\ncolour: red\n",
		"badurl.yaml":  "http: [{url: 'ftp://x', tools: [{name: a}]}]\n",
	} {
		if _, err := chatExecutor(write(name, text)); !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := chatExecutor(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("a missing --chat-tools file is accepted")
	}
	if _, err := chatModel("scripted", write("script.yaml", "rules: [{match: '(', reply: x}]")); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("a bad script: %v", err)
	}
	if _, err := chatModel("gpt", ""); err == nil {
		t.Error("an unknown model is accepted")
	}
	if m, err := chatModel("scripted", ""); err != nil || m == nil {
		t.Errorf("the default script: %v", err)
	}
}
