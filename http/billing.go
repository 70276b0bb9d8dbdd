package http

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/billing"
	"github.com/gatehouse/gatehouse/service"
)

// Billing (seed 001): the payment provider's signed webhook, which moves
// customers between plans, and plans set by administrators. The webhook
// takes no bearer token: its Stripe-Signature authenticates it.

// planBody is the body of PUT …/plan: the plan name, "" to remove the
// object's own plan.
type planBody struct {
	Plan *string `json:"plan"`
}

// webhookAnswer acknowledges a webhook event the server verified.
type webhookAnswer struct {
	Received bool            `json:"received"`
	Event    string          `json:"event"`
	Type     string          `json:"type"`
	Outcome  billing.Outcome `json:"outcome"`
	Subject  string          `json:"subject,omitempty"`
	Plan     string          `json:"plan,omitempty"`
	Version  int64           `json:"version,omitempty"`
}

// webhookEvent documents the webhook's body: a provider event.
type webhookEvent struct {
	ID      string         `json:"id"`
	Object  string         `json:"object" description:"event"`
	Type    string         `json:"type"`
	Created int64          `json:"created" description:"seconds since the epoch"`
	Data    map[string]any `json:"data"`
}

func (s *Server) billingRoutes(mux *http.ServeMux) {
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_billing_events_total",
		Help: "Billing webhook events, by outcome (applied, duplicate, stale, ignored, unknown_customer, unknown_price, rejected).",
	}, []string{"outcome"})
	s.metrics.reg.MustRegister(events)
	s.route(mux, http.MethodPost, "/api/v1/billing/webhook", s.billingWebhook(events),
		apiDoc("billing_webhook", "A payment provider's event, signed in Stripe-Signature; 200 for every verified event, also those that change nothing",
			new(webhookEvent), new(webhookAnswer)).public().tagged("billing"))
	for _, k := range []struct {
		section string
		kind    gatehouse.Kind
	}{{"tenants", gatehouse.KindTenant}, {"users", gatehouse.KindUser}} {
		path := "/api/v1/" + k.section + "/{id}/plan"
		s.route(mux, http.MethodGet, path, s.authenticated(s.getPlan(k.kind)),
			apiDoc("get_"+string(k.kind)+"_plan", "The "+string(k.kind)+"'s own and effective plan, its features and billing customers",
				nil, new(service.PlanView)).withParams(new(idPath)).tagged("billing"))
		s.route(mux, http.MethodPut, path, s.authenticated(s.putPlan(k.kind)),
			apiDoc("put_"+string(k.kind)+"_plan", "Set the "+string(k.kind)+"'s own plan; \"\" removes it",
				new(planBody), new(writeResult)).withParams(new(idPath)).tagged("billing"))
	}
}

// billingWebhook verifies, decodes and applies one provider event, and
// counts it in events by outcome. A bad signature or body is a 400 and
// changes nothing; a verified event is a 200 even when it changes nothing
// (unknown type, customer or price, duplicate, stale), so the provider does
// not retry it; a store failure is a 5xx, which it retries.
func (s *Server) billingWebhook(events *prometheus.CounterVec) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cfg := s.cfg.Billing
		if cfg == nil {
			s.writeError(w, r, &Error{Code: gatehouse.CodeNotFound, Message: "error.billing_disabled",
				Err: errors.New("billing webhook: no billing configuration")})
			return
		}
		reject := func(err error) {
			events.WithLabelValues(string(billing.OutcomeRejected)).Inc()
			s.writeError(w, r, err)
		}
		body, err := s.readBody(w, r)
		if err != nil {
			reject(err)
			return
		}
		if err := billing.Verify(body, r.Header.Get(billing.SignatureHeader), cfg.Secrets, cfg.Tolerance, s.cfg.Clock.Now()); err != nil {
			reject(invalid("error.bad_signature", nil).wrap(err))
			return
		}
		e, err := billing.DecodeEvent(body)
		if err != nil {
			reject(invalid("error.bad_json", nil).wrap(err))
			return
		}
		res := service.BillingResult{Event: e.ID, Type: e.Type, Customer: e.Customer, Outcome: billing.OutcomeIgnored}
		if billing.Handled(e.Type) {
			if res, err = s.svc.ApplyBillingEvent(r.Context(), cfg, e); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		events.WithLabelValues(string(res.Outcome)).Inc()
		level := slog.LevelInfo
		if res.Outcome == billing.OutcomeUnknownCustomer || res.Outcome == billing.OutcomeUnknownPrice {
			level = slog.LevelWarn
		}
		s.cfg.Logger.Log(r.Context(), level, "billing event", "request_id", requestID(r.Context()),
			"event", e.ID, "type", e.Type, "customer", e.Customer, "outcome", res.Outcome,
			"subject", res.Subject, "plan", res.Plan, "version", res.Version)
		s.writeJSON(w, r, http.StatusOK, webhookAnswer{Received: true, Event: e.ID, Type: e.Type,
			Outcome: res.Outcome, Subject: res.Subject, Plan: res.Plan, Version: res.Version})
	}
}

// getPlan answers an administrator with a tenant's or user's plan.
func (s *Server) getPlan(kind gatehouse.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.requireAdmin(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		var (
			v   service.PlanView
			err error
		)
		if kind == gatehouse.KindTenant {
			v, err = s.svc.TenantPlan(r.Context(), r.PathValue("id"))
		} else {
			v, err = s.svc.UserPlan(r.Context(), r.PathValue("id"))
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeJSON(w, r, http.StatusOK, v)
	}
}

// putPlan sets a tenant's or user's own plan for an administrator, as one
// audited change.
func (s *Server) putPlan(kind gatehouse.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.requireAdmin(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		body, err := s.readBody(w, r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		var in planBody
		if err := decodeStrict(body, &in); err != nil {
			s.writeError(w, r, err)
			return
		}
		if in.Plan == nil {
			s.writeError(w, r, invalid("error.missing_field", map[string]any{"Field": "plan"}).wrap(errors.New("no plan")))
			return
		}
		var res service.Result
		if kind == gatehouse.KindTenant {
			res, err = s.svc.SetTenantPlan(r.Context(), s.actor(r), r.PathValue("id"), *in.Plan)
		} else {
			res, err = s.svc.SetUserPlan(r.Context(), s.actor(r), r.PathValue("id"), *in.Plan)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeJSON(w, r, http.StatusOK, writeResult{Version: res.Version, Changes: changes(res)})
	}
}
