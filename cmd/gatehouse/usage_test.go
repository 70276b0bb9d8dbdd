package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/locale"
)

// Every usage error the CLI raises names a message the catalogs have.
func TestUsageMessagesExist(t *testing.T) {
	t.Parallel()
	cat, err := locale.New()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, id := range cat.IDs() {
		ids[id] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	call := regexp.MustCompile(`\busage\("(\w+)"`)
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range call.FindAllSubmatch(src, -1) {
			n++
			if id := "cli.usage." + string(m[1]); !ids[id] {
				t.Errorf("%s: usage error %s has no message", f, id)
			}
		}
	}
	if n < 50 {
		t.Errorf("found %d usage errors, want the CLI's (at least 50)", n)
	}
}

// Package flag's errors become usage errors with their own message ids.
func TestFlagError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		id   string
		flag string
	}{
		{[]string{"--frob"}, "cli.usage.unknown_flag", "--frob"},
		{[]string{"--limit"}, "cli.usage.flag_needs_value", "--limit"},
		{[]string{"--limit", "many"}, "cli.usage.flag_bad_value", "--limit"},
		{[]string{"--json=maybe"}, "cli.usage.flag_bad_value", "--json"},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Int("limit", 0, "")
		fs.Bool("json", false, "")
		err := fs.Parse(tt.args)
		if err == nil {
			t.Fatalf("%v: parsed", tt.args)
		}
		uerr := flagError(err)
		var ue *usageError
		if !errors.As(uerr, &ue) || !errors.Is(uerr, errUsage) {
			t.Fatalf("%v: %#v is not a usage error", tt.args, uerr)
		}
		if ue.ID != tt.id || ue.Data["Flag"] != tt.flag {
			t.Errorf("%v: %s %v, want %s naming %s", tt.args, ue.ID, ue.Data, tt.id, tt.flag)
		}
	}
}
