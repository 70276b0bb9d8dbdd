// Command loadgen is the HTTP load test of scripts/bench-http: it starts a
// Gatehouse server (the built binary, the example policy on a fresh SQLite
// database) and, if given, an OpenFGA server (in-memory datastore) with the
// equivalent model, both on 127.0.0.1 only; checks that both answer every
// question of the request matrix alike; then runs each scenario — single
// decisions and batches — for a fixed time at a fixed concurrency and
// prints req/s, p50 and p99 latency, and the CPU each process used.
//
//	loadgen -gatehouse ./gatehouse -policy examples/ai-assistant/policy.yaml [-openfga ./openfga]
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if len(os.Args) == 3 && os.Args[1] == baselineCommand {
		err := serveBaseline(ctx, os.Args[2])
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	m := NewMain()
	err := m.ParseFlags(os.Args[1:])
	if err == nil {
		err = m.Run(ctx)
	}
	m.Close()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// Config is what to start and how hard to push.
type Config struct {
	GatehouseBin string
	Policy       string
	// OpenFGABin is the openfga binary; empty skips OpenFGA.
	OpenFGABin  string
	Dir         string
	Duration    time.Duration
	Warmup      time.Duration
	Concurrency int
	Batch       int
	// Driver sends the load: "go" (this program's HTTP client) or "wrk".
	Driver string
	// WrkBin is the wrk binary for the wrk driver.
	WrkBin string
}

// Main is the program: its configuration and the servers it started.
type Main struct {
	Config
	Stdout io.Writer
	procs  []*exec.Cmd
	hc     *http.Client
}

// NewMain returns a Main printing to stdout.
func NewMain() *Main { return &Main{Stdout: os.Stdout} }

// ParseFlags reads the configuration from args.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&m.GatehouseBin, "gatehouse", "", "the gatehouse binary (required)")
	fs.StringVar(&m.Policy, "policy", "examples/ai-assistant/policy.yaml", "the policy Gatehouse serves")
	fs.StringVar(&m.OpenFGABin, "openfga", "", "the openfga binary; empty skips the OpenFGA scenarios")
	fs.StringVar(&m.Dir, "dir", "", "directory for the database and server logs (required)")
	fs.DurationVar(&m.Duration, "duration", 10*time.Second, "measured time per scenario")
	fs.DurationVar(&m.Warmup, "warmup", 2*time.Second, "unmeasured load before each scenario")
	fs.IntVar(&m.Concurrency, "concurrency", 16, "requests in flight: workers sending back to back")
	fs.IntVar(&m.Batch, "batch", 100, "decisions per batch request")
	fs.StringVar(&m.Driver, "driver", "go", "what sends the load: go (this program) or wrk")
	fs.StringVar(&m.WrkBin, "wrk", "wrk", "the wrk binary, for -driver wrk")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case m.GatehouseBin == "" || m.Dir == "":
		return errors.New("-gatehouse and -dir are required")
	case m.Duration <= 0 || m.Warmup < 0 || m.Concurrency <= 0 || m.Batch <= 0:
		return errors.New("-duration, -concurrency and -batch must be positive, -warmup not negative")
	case m.Duration > 5*time.Minute:
		return errors.New("-duration is at most 5m: this is a bounded load test")
	case m.Driver != "go" && m.Driver != "wrk":
		return fmt.Errorf("-driver %q: want go or wrk", m.Driver)
	}
	return nil
}

// Run starts the servers, checks they agree, runs the scenarios and
// prints the results.
func (m *Main) Run(ctx context.Context) error {
	m.hc = &http.Client{Transport: &http.Transport{
		MaxIdleConns: m.Concurrency * 2, MaxIdleConnsPerHost: m.Concurrency * 2, IdleConnTimeout: time.Minute,
	}, Timeout: 30 * time.Second}
	fmt.Fprintf(m.Stdout, "loadgen: %d CPUs (GOMAXPROCS %d), %s, load average %s; %s per scenario after %s warm-up, %d in flight, sent by %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), loadAverage(), m.Duration, m.Warmup, m.Concurrency, m.Driver)

	baseline, baselinePID, err := m.startBaseline(ctx)
	if err != nil {
		return err
	}
	db := filepath.Join(m.Dir, "gatehouse.db")
	apply := exec.CommandContext(ctx, m.GatehouseBin, "apply", "-f", m.Policy, "--db", db)
	if out, err := apply.CombinedOutput(); err != nil {
		return fmt.Errorf("gatehouse apply: %v: %s", err, out)
	}
	gh, ghPID, err := m.startGatehouse(ctx, "gatehouse", db)
	if err != nil {
		return err
	}
	// The same server without the decision log, which writes every
	// decision to the audit trail in SQLite.
	quiet, quietPID, err := m.startGatehouse(ctx, "gatehouse-no-decision-log", db, "--decision-log=false")
	if err != nil {
		return err
	}
	var fga, cached *openFGA
	var fgaPID, cachedPID int
	if m.OpenFGABin != "" {
		if fga, fgaPID, err = m.startOpenFGA(ctx, "openfga"); err != nil {
			return err
		}
		// OpenFGA's own cache of check results (off by default: it makes
		// checks eventually consistent), its best case for repeated questions.
		if cached, cachedPID, err = m.startOpenFGA(ctx, "openfga-check-cache", "--check-query-cache-enabled"); err != nil {
			return err
		}
	}

	qs := matrix()
	batch := make([]question, m.Batch)
	for i := range batch {
		batch[i] = qs[i%len(qs)]
	}
	if err := m.verify(ctx, gh, fga, qs, batch); err != nil {
		return err
	}
	if cached != nil {
		if err := m.verify(ctx, gh, cached, qs, batch); err != nil {
			return err
		}
	}

	ghHeader := http.Header{"Authorization": {"Bearer " + gh.token}}
	scenarios := []scenario{
		{name: "net/http fixed answer", url: baseline + "/", bodies: bodies(qs, gh.evaluationBody), decisions: 1, pid: baselinePID},
		{name: "gatehouse evaluation", url: gh.url + "/access/v1/evaluation", header: ghHeader,
			bodies: bodies(qs, gh.evaluationBody), decisions: 1, pid: ghPID},
		{name: "  without decision log", url: quiet.url + "/access/v1/evaluation",
			header: http.Header{"Authorization": {"Bearer " + quiet.token}},
			bodies: bodies(qs, quiet.evaluationBody), decisions: 1, pid: quietPID},
	}
	if fga != nil {
		scenarios = append(scenarios,
			scenario{name: "openfga check", url: fga.storeURL("/check"),
				bodies: bodies(qs, fga.checkBody), decisions: 1, pid: fgaPID},
			scenario{name: "  with check query cache", url: cached.storeURL("/check"),
				bodies: bodies(qs, cached.checkBody), decisions: 1, pid: cachedPID})
	}
	scenarios = append(scenarios, scenario{name: fmt.Sprintf("gatehouse evaluations x%d", m.Batch),
		url: gh.url + "/access/v1/evaluations", header: ghHeader,
		bodies: batchBodies(qs, m.Batch, gh.batchBody), decisions: m.Batch, pid: ghPID})
	if fga != nil {
		scenarios = append(scenarios, scenario{name: fmt.Sprintf("openfga batch-check x%d", m.Batch),
			url: fga.storeURL("/batch-check"), bodies: batchBodies(qs, m.Batch, fga.batchBody), decisions: m.Batch, pid: fgaPID})
	}
	var results []result
	for _, sc := range scenarios {
		fmt.Fprintf(m.Stdout, "running %s …\n", sc.name)
		var r result
		if m.Driver == "wrk" {
			if r, err = runWrk(ctx, m.WrkBin, m.Dir, sc, m.Concurrency, m.Warmup, m.Duration); err != nil {
				return err
			}
		} else {
			r = run(ctx, m.hc, sc, m.Concurrency, m.Warmup, m.Duration)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		results = append(results, r)
		// Let the server finish what the load left (the decision log).
		time.Sleep(time.Second)
	}
	fmt.Fprintln(m.Stdout)
	report(m.Stdout, results)
	for _, r := range results {
		if r.errors > 0 {
			return fmt.Errorf("%s: %d requests failed", r.name, r.errors)
		}
	}
	return nil
}

// bodies is one request body per question.
func bodies(qs []question, body func(question) []byte) [][]byte {
	out := make([][]byte, len(qs))
	for i, q := range qs {
		out[i] = body(q)
	}
	return out
}

// batchBodies is one batch per question, each of n questions starting at it.
func batchBodies(qs []question, n int, body func([]question) []byte) [][]byte {
	out := make([][]byte, len(qs))
	for i := range qs {
		batch := make([]question, n)
		for j := range batch {
			batch[j] = qs[(i+j)%len(qs)]
		}
		out[i] = body(batch)
	}
	return out
}

// verify asks every question singly and one batch of both servers and
// fails unless all answers agree.
func (m *Main) verify(ctx context.Context, gh *gatehouse, fga *openFGA, qs, batch []question) error {
	want := map[question]bool{}
	allowed := 0
	for _, q := range qs {
		d, err := gh.decide(ctx, m.hc, q)
		if err != nil {
			return fmt.Errorf("gatehouse %v: %w", q, err)
		}
		want[q] = d
		if d {
			allowed++
		}
		if fga == nil {
			continue
		}
		f, err := fga.decide(ctx, m.hc, q)
		if err != nil {
			return fmt.Errorf("openfga %v: %w", q, err)
		}
		if f != d {
			return fmt.Errorf("may %s call %s in %s? gatehouse %v, openfga %v: the models differ", q.user, q.tool, q.tenant, d, f)
		}
	}
	check := func(name string, answers []bool, err error) error {
		if err != nil {
			return fmt.Errorf("%s batch: %w", name, err)
		}
		for i, q := range batch {
			if answers[i] != want[q] {
				return fmt.Errorf("%s batch item %d (%v): %v, single answer %v", name, i, q, answers[i], want[q])
			}
		}
		return nil
	}
	ga, err := gh.decideBatch(ctx, m.hc, batch)
	if err := check("gatehouse", ga, err); err != nil {
		return err
	}
	servers := "gatehouse"
	if fga != nil {
		fa, err := fga.decideBatch(ctx, m.hc, batch)
		if err := check("openfga", fa, err); err != nil {
			return err
		}
		servers = "gatehouse and openfga agree:"
	}
	fmt.Fprintf(m.Stdout, "%s %d of %d questions allowed, singly and in a batch of %d\n", servers, allowed, len(qs), len(batch))
	return nil
}

// startGatehouse serves the database db, with AuthZEN behind a random
// shared token; args are further serve flags.
func (m *Main) startGatehouse(ctx context.Context, name, db string, args ...string) (*gatehouse, int, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, 0, err
	}
	gh := &gatehouse{url: "http://" + addr, token: rand.Text()}
	args = append([]string{"serve", "--db", db, "--addr", addr, "--jwt-secret", rand.Text() + rand.Text(),
		"--authzen-auth", "token", "--authzen-token", gh.token}, args...)
	cmd, err := m.start(ctx, name, m.GatehouseBin, args...)
	if err != nil {
		return nil, 0, err
	}
	if err := m.waitReady(ctx, gh.url+"/readyz"); err != nil {
		return nil, 0, fmt.Errorf("%s: %w (log: %s)", name, err, filepath.Join(m.Dir, name+".log"))
	}
	fmt.Fprintf(m.Stdout, "%s serving %s on %s (pid %d)\n", name, m.Policy, gh.url, cmd.Process.Pid)
	return gh, cmd.Process.Pid, nil
}

// startBaseline runs this program's fixed-answer server (serveBaseline) in
// a process of its own and returns its URL.
func (m *Main) startBaseline(ctx context.Context) (string, int, error) {
	self, err := os.Executable()
	if err != nil {
		return "", 0, err
	}
	addr, err := freeAddr()
	if err != nil {
		return "", 0, err
	}
	cmd, err := m.start(ctx, "baseline", self, baselineCommand, addr)
	if err != nil {
		return "", 0, err
	}
	url := "http://" + addr
	if err := m.waitReady(ctx, url+"/"); err != nil {
		return "", 0, fmt.Errorf("baseline: %w", err)
	}
	return url, cmd.Process.Pid, nil
}

// startOpenFGA serves OpenFGA's in-memory datastore and sets up the
// equivalent model; args are further flags of openfga run.
func (m *Main) startOpenFGA(ctx context.Context, name string, extra ...string) (*openFGA, int, error) {
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, 0, err
	}
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, 0, err
	}
	args := append([]string{"run", "--datastore-engine", "memory",
		"--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--playground-enabled=false", "--metrics-enabled=false",
		"--max-checks-per-batch-check", fmt.Sprint(m.Batch)}, extra...)
	cmd, err := m.start(ctx, name, m.OpenFGABin, args...)
	if err != nil {
		return nil, 0, err
	}
	url := "http://" + httpAddr
	if err := m.waitReady(ctx, url+"/healthz"); err != nil {
		return nil, 0, fmt.Errorf("%s: %w (log: %s)", name, err, filepath.Join(m.Dir, name+".log"))
	}
	fga, err := setUpOpenFGA(ctx, m.hc, url)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(m.Stdout, "%s serving the equivalent model on %s (pid %d) %s\n", name, url, cmd.Process.Pid, strings.Join(extra, " "))
	return fga, cmd.Process.Pid, nil
}

// start runs a server with its output in Dir/NAME.log; Close stops it.
func (m *Main) start(ctx context.Context, name, bin string, args ...string) (*exec.Cmd, error) {
	log, err := os.Create(filepath.Join(m.Dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	log.Close() // the child holds its own descriptor
	m.procs = append(m.procs, cmd)
	return cmd, nil
}

// waitReady polls url until it answers 200, for up to 30 s.
func (m *Main) waitReady(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if res, err := m.hc.Do(req); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not become ready: %w", url, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close stops the servers Run started: SIGTERM, then SIGKILL after 5 s.
func (m *Main) Close() {
	for _, cmd := range m.procs {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	m.procs = nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// loadAverage is the 1-, 5- and 15-minute load average, "?" when unknown.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
