package main

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// parseWrk reads wrk --latency reports as wrk 4.1 prints them
// (testdata: a run against gatehouse serve, and one with a wrong token).
func TestParseWrk(t *testing.T) {
	tests := []struct {
		file                   string
		requests, errors       int
		elapsed, p50, p99, max time.Duration
	}{
		{"wrk-ok.txt", 34076, 0, 2 * time.Second, 155 * time.Microsecond, 6410 * time.Microsecond, 12720 * time.Microsecond},
		{"wrk-401.txt", 0, 18819, 1100 * time.Millisecond, 92 * time.Microsecond, 1210 * time.Microsecond, 4680 * time.Microsecond},
	}
	for _, tc := range tests {
		out, err := os.ReadFile("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		r, err := parseWrk(string(out))
		if err != nil {
			t.Fatalf("parseWrk(%s) = %v", tc.file, err)
		}
		if r.requests != tc.requests || r.errors != tc.errors || r.elapsed != tc.elapsed ||
			r.p50 != tc.p50 || r.p99 != tc.p99 || r.max != tc.max {
			t.Errorf("parseWrk(%s) = requests %d errors %d in %v, p50 %v p99 %v max %v; want %d %d in %v, %v %v %v",
				tc.file, r.requests, r.errors, r.elapsed, r.p50, r.p99, r.max,
				tc.requests, tc.errors, tc.elapsed, tc.p50, tc.p99, tc.max)
		}
	}
	for _, bad := range []string{"", "Running 1s test\n  Latency Distribution\n     50%  1.00xs\n", "  12 requests in 1.00s\n"} {
		if _, err := parseWrk(bad); err == nil {
			t.Errorf("parseWrk(%q) = nil error", bad)
		}
	}
}

// The script carries every body and header verbatim, whatever brackets
// the bodies contain.
func TestWrkScript(t *testing.T) {
	sc := scenario{header: http.Header{"Authorization": {"Bearer t0k"}},
		bodies: [][]byte{[]byte(`{"a":[[1]]}`), []byte(`{"b":"]=]"}`)}}
	script := wrkScript(sc)
	for _, want := range []string{
		"headers[ [[\nAuthorization]] ] = [[\nBearer t0k]]",
		"[=[\n{\"a\":[[1]]}]=]",
		"[[\n{\"b\":\"]=]\"}]]",
		"return wrk.format(\"POST\", nil, headers, bodies[i])",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	if got := luaString("]]]=]]==]"); got != "[===[\n]]]=]]==]]===]" {
		t.Errorf("luaString = %q", got)
	}
}
