package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The wrk driver: the same closed loop as run, sent by wrk
// (github.com/wg/wrk, Debian package wrk), a C load generator that needs a
// fraction of the CPU a Go client does, which on a small machine is CPU the
// server under test gets back. A Lua script rotates the scenario's bodies;
// wrk reports the latency percentiles, loadgen the CPU each side used.

// wrkScript is the Lua script that sends sc's bodies in turn with its
// headers.
func wrkScript(sc scenario) string {
	var b strings.Builder
	b.WriteString("local headers = {[\"Content-Type\"] = \"application/json\"}\n")
	for k, vs := range sc.header {
		for _, v := range vs {
			// A space keeps headers[ [[…]] ] from reading as a call, headers[[…]].
			fmt.Fprintf(&b, "headers[ %s ] = %s\n", luaString(k), luaString(v))
		}
	}
	b.WriteString("local bodies = {\n")
	for _, body := range sc.bodies {
		fmt.Fprintf(&b, "  %s,\n", luaString(string(body)))
	}
	b.WriteString("}\nlocal i = 0\nrequest = function()\n  i = i % #bodies + 1\n" +
		"  return wrk.format(\"POST\", nil, headers, bodies[i])\nend\n")
	return b.String()
}

// luaString quotes s as a Lua string literal: a long bracket of a level
// that s does not close.
func luaString(s string) string {
	eq := ""
	for strings.Contains(s, "]"+eq+"]") {
		eq += "="
	}
	// A newline right after the opening bracket would be dropped.
	return "[" + eq + "[" + "\n" + s + "]" + eq + "]"
}

// runWrk measures sc with wrk: a warm-up run, then the measured one.
func runWrk(ctx context.Context, wrkBin, dir string, sc scenario, concurrency int, warmup, duration time.Duration) (result, error) {
	path := filepath.Join(dir, "wrk-"+strconv.Itoa(os.Getpid())+".lua")
	if err := os.WriteFile(path, []byte(wrkScript(sc)), 0o600); err != nil {
		return result{}, err
	}
	defer os.Remove(path)
	threads := min(concurrency, 2)
	args := func(d time.Duration) []string {
		return []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(concurrency),
			"-d", strconv.Itoa(int(d.Round(time.Second)/time.Second)) + "s", "--latency", "-s", path, sc.url}
	}
	if warmup >= time.Second {
		if out, err := exec.CommandContext(ctx, wrkBin, args(warmup)...).CombinedOutput(); err != nil {
			return result{}, fmt.Errorf("wrk warm-up: %v: %s", err, out)
		}
	}
	serverBefore := cpuTime(sc.pid)
	cmd := exec.CommandContext(ctx, wrkBin, args(duration)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return result{}, fmt.Errorf("wrk: %v in:\n%s", err, out)
	}
	r.name, r.concurrency, r.decisions = sc.name, concurrency, sc.decisions
	r.serverCPU, r.loadCPU = -1, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime()
	if after := cpuTime(sc.pid); after >= 0 && serverBefore >= 0 {
		r.serverCPU = after - serverBefore
	}
	return r, nil
}

// parseWrk reads the figures of a wrk --latency report.
func parseWrk(out string) (result, error) {
	var r result
	var seen int
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 4 && f[0] == "Latency" && !strings.HasSuffix(f[1], "%"):
			// Thread stats: Latency avg stdev max +/-stdev.
			d, err := wrkDuration(f[3])
			if err != nil {
				return r, err
			}
			r.max = d
		case len(f) == 2 && (f[0] == "50%" || f[0] == "99%"):
			d, err := wrkDuration(f[1])
			if err != nil {
				return r, err
			}
			if f[0] == "50%" {
				r.p50 = d
			} else {
				r.p99 = d
			}
			seen++
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			n, err1 := strconv.Atoi(f[0])
			d, err2 := wrkDuration(strings.TrimSuffix(f[3], ","))
			if err := errors.Join(err1, err2); err != nil {
				return r, err
			}
			r.requests, r.elapsed = n, d
			seen++
		case strings.HasPrefix(strings.TrimSpace(line), "Non-2xx or 3xx responses:"):
			n, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				return r, err
			}
			r.errors += n
			r.firstError = fmt.Sprintf("%d responses with a status other than 2xx or 3xx", n)
		case len(f) > 2 && f[0] == "Socket" && f[1] == "errors:":
			// Socket errors: connect 0, read 0, write 0, timeout 0
			for i := 3; i < len(f); i += 2 {
				n, err := strconv.Atoi(strings.TrimSuffix(f[i], ","))
				if err != nil {
					return r, err
				}
				r.errors += n
			}
			if r.firstError == "" {
				r.firstError = strings.TrimSpace(line)
			}
		}
	}
	if seen != 3 || r.elapsed <= 0 {
		return r, errors.New("no latency distribution or request count")
	}
	// wrk counts the failed requests among the requests.
	r.requests -= r.errors
	return r, nil
}

// wrkDuration parses wrk's durations: 691.00us, 10.69ms, 1.24s, 2.00m.
func wrkDuration(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("duration %q: %w", s, err)
			}
			return time.Duration(f * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("duration %q: no unit", s)
}
