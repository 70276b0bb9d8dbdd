package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// scenario is one load: the same kind of request with rotating bodies.
type scenario struct {
	name string
	url  string
	// header is set on every request (Authorization).
	header http.Header
	bodies [][]byte
	// decisions is the number of decisions one request asks for.
	decisions int
	// pid is the server's process id, for its CPU time; 0 if unknown.
	pid int
}

// result is what a scenario measured after its warm-up.
type result struct {
	name        string
	concurrency int
	requests    int
	errors      int
	elapsed     time.Duration
	decisions   int
	// latencies are sorted; the Go driver keeps them, wrk reports only
	// the percentiles.
	latencies     []time.Duration
	p50, p99, max time.Duration
	// serverCPU and loadCPU are the CPU time the server and the load
	// generator used while measuring; -1 when unknown.
	serverCPU, loadCPU time.Duration
	firstError         string
}

func (r *result) perSecond() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// percentile returns the latency below which p percent of the requests
// finished (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// run sends sc's requests from concurrency workers back to back, each
// waiting for its answer before the next (a closed loop), for warmup and
// then duration; only the requests started after the warm-up count.
func run(ctx context.Context, hc *http.Client, sc scenario, concurrency int, warmup, duration time.Duration) result {
	start := time.Now()
	measureFrom := start.Add(warmup)
	end := measureFrom.Add(duration)
	type worker struct {
		latencies []time.Duration
		errors    int
		firstErr  string
	}
	workers := make([]worker, concurrency)
	var cpuBefore struct {
		server, load time.Duration
	}
	var cpuOnce sync.Once
	markCPU := func() {
		cpuBefore.server, cpuBefore.load = cpuTime(sc.pid), cpuTime(os.Getpid())
	}
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Go(func() {
			me := &workers[w]
			me.latencies = make([]time.Duration, 0, 1<<16)
			for i := w; ctx.Err() == nil; i += concurrency {
				began := time.Now()
				if !began.Before(end) {
					return
				}
				err := send(ctx, hc, sc.url, sc.header, sc.bodies[i%len(sc.bodies)])
				took := time.Since(began)
				if began.Before(measureFrom) {
					continue
				}
				cpuOnce.Do(markCPU)
				if err != nil {
					me.errors++
					if me.firstErr == "" {
						me.firstErr = err.Error()
					}
					continue
				}
				me.latencies = append(me.latencies, took)
			}
		})
	}
	wg.Wait()
	r := result{name: sc.name, concurrency: concurrency, elapsed: duration, decisions: sc.decisions,
		serverCPU: -1, loadCPU: -1}
	if s, l := cpuTime(sc.pid), cpuTime(os.Getpid()); s >= 0 && cpuBefore.server >= 0 && sc.pid != 0 {
		r.serverCPU = s - cpuBefore.server
		if l >= 0 && cpuBefore.load >= 0 {
			r.loadCPU = l - cpuBefore.load
		}
	}
	for _, w := range workers {
		r.latencies = append(r.latencies, w.latencies...)
		r.errors += w.errors
		if r.firstError == "" {
			r.firstError = w.firstErr
		}
	}
	r.requests = len(r.latencies)
	slices.Sort(r.latencies)
	r.p50, r.p99, r.max = percentile(r.latencies, 50), percentile(r.latencies, 99), percentile(r.latencies, 100)
	return r
}

// send posts body and reads the whole answer; a status other than 200 is
// an error.
func send(ctx context.Context, hc *http.Client, url string, header http.Header, body []byte) error {
	req, err := newPost(ctx, url, body)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d", url, res.StatusCode)
	}
	return err
}

// cpuTime is the user and system CPU time process pid has used, from
// /proc/PID/stat (Linux); -1 when it cannot be read.
func cpuTime(pid int) time.Duration {
	if pid == 0 {
		return -1
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// Fields after the parenthesized command name; utime and stime are
	// the 14th and 15th fields, in clock ticks (100 per second on Linux).
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func newPost(ctx context.Context, url string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// do sends req and decodes a 2xx JSON answer into out (nil: discard).
func do(hc *http.Client, req *http.Request, out any) error {
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: status %d: %s", req.Method, req.URL, res.StatusCode, bytes.TrimSpace(body))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(body, out)
}

func postRaw(ctx context.Context, hc *http.Client, url string, body []byte, out any) error {
	req, err := newPost(ctx, url, body)
	if err != nil {
		return err
	}
	return do(hc, req, out)
}

func postJSON(ctx context.Context, hc *http.Client, url string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return postRaw(ctx, hc, url, body, out)
}

// report prints the results as a table.
func report(w io.Writer, results []result) {
	fmt.Fprintf(w, "%-28s %5s %9s %8s %12s %8s %8s %8s %6s %11s %11s %11s\n", "scenario", "conc", "requests",
		"req/s", "decisions/s", "p50 ms", "p99 ms", "max ms", "errors", "server CPU", "µs CPU/req", "load CPU")
	for _, r := range results {
		perRequest := "-"
		if r.serverCPU >= 0 && r.requests > 0 {
			perRequest = fmt.Sprintf("%.0f", float64(r.serverCPU.Microseconds())/float64(r.requests))
		}
		fmt.Fprintf(w, "%-28s %5d %9d %8.0f %12.0f %8.3f %8.3f %8.3f %6d %11s %11s %11s\n",
			r.name, r.concurrency, r.requests, r.perSecond(), r.perSecond()*float64(r.decisions),
			ms(r.p50), ms(r.p99), ms(r.max),
			r.errors, cpuShare(r.serverCPU, r.elapsed), perRequest, cpuShare(r.loadCPU, r.elapsed))
	}
	for _, r := range results {
		if r.firstError != "" {
			fmt.Fprintf(w, "%s: first error: %s\n", r.name, r.firstError)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cpuShare formats CPU time over elapsed as cores, e.g. "1.21 cores".
func cpuShare(cpu, elapsed time.Duration) string {
	if cpu < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f cores", cpu.Seconds()/elapsed.Seconds())
}
