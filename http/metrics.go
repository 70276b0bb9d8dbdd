package http

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/chat"
)

// metrics are the server's Prometheus metrics, in a registry of its own so
// that several servers in one process (tests) do not collide.
type metrics struct {
	reg             *prometheus.Registry
	decisions       *prometheus.CounterVec
	decisionSeconds *prometheus.HistogramVec
	requests        *prometheus.CounterVec
	requestSeconds  *prometheus.HistogramVec
	rateLimited     prometheus.Counter
	chatSockets     prometheus.Gauge
	chatFrames      *prometheus.CounterVec
}

// decisionBuckets span a cached check (microseconds) to a slow batch.
var decisionBuckets = []float64{1e-6, 5e-6, 25e-6, 100e-6, 500e-6, 1e-3, 5e-3, 25e-3, 100e-3, 500e-3}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_decisions_total", Help: "Decisions made, by endpoint and reason code.",
		}, []string{"endpoint", "reason"}),
		decisionSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gatehouse_decision_duration_seconds", Help: "Time to decide one evaluation, by endpoint.", Buckets: decisionBuckets,
		}, []string{"endpoint"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_http_requests_total", Help: "HTTP requests, by route pattern and status code.",
		}, []string{"route", "code"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gatehouse_http_request_duration_seconds", Help: "HTTP request latency, by route pattern.", Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_http_rate_limited_total", Help: "Requests refused with 429 by the per-key rate limit.",
		}),
	}
	m.chatSockets = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gatehouse_chat_sockets", Help: "Chat WebSockets open now.",
	})
	m.chatFrames = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_chat_frames_total", Help: "Frames chat clients sent, by command type (or bad_frame, rate_limited, too_big).",
	}, []string{"type"})
	m.reg.MustRegister(m.chatSockets, m.chatFrames)
	if e := s.cfg.Chat; e != nil {
		for _, outcome := range chat.ToolOutcomes {
			m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "gatehouse_chat_tool_calls_total", Help: "Tool calls the chat's models made, by outcome.",
				ConstLabels: prometheus.Labels{"outcome": outcome},
			}, func() float64 { return float64(e.ToolCalls(outcome)) }))
		}
	}
	m.reg.MustRegister(m.decisions, m.decisionSeconds, m.requests, m.requestSeconds, m.rateLimited,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gatehouse_policy_version", Help: "Policy version of the snapshot deciding now.",
		}, func() float64 { return float64(s.svc.Version()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gatehouse_policy_snapshot_age_seconds", Help: "Seconds since the deciding snapshot was loaded.",
		}, func() float64 {
			at := s.svc.SnapshotLoadedAt()
			if at.IsZero() {
				return 0
			}
			return s.cfg.Clock.Now().Sub(at).Seconds()
		}),
	)
	if l := s.cfg.Decisions; l != nil {
		m.reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "gatehouse_decision_log_dropped_total", Help: "Decisions not recorded in the audit trail because the log queue was full.",
			}, func() float64 { return float64(l.Dropped()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "gatehouse_decision_log_failed_total", Help: "Decisions not recorded because the store refused their batch.",
			}, func() float64 { return float64(l.Failed()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "gatehouse_decision_log_written_total", Help: "Decisions recorded in the audit trail.",
			}, func() float64 { return float64(l.Written()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "gatehouse_decision_log_queued", Help: "Decisions waiting to be recorded.",
			}, func() float64 { return float64(l.Queued()) }),
		)
	}
	return m
}

// decided counts one decision made at endpoint.
func (m *metrics) decided(endpoint string, reason gatehouse.Reason, took time.Duration) {
	m.decisions.WithLabelValues(endpoint, string(reason)).Inc()
	m.decisionSeconds.WithLabelValues(endpoint).Observe(took.Seconds())
}

// withMetrics counts requests by route pattern (never the raw path, which
// would let callers create unbounded label values) and status.
func (s *Server) withMetrics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw, ok := w.(*statusWriter)
		if !ok {
			sw = &statusWriter{ResponseWriter: w}
		}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
		s.metrics.requestSeconds.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
}

// decisionRecord is what the decision log keeps of a request, besides the
// decision.
