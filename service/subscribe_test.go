package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/examples"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/service"
)

// openExample opens a service on store with the example policy applied.
func openExample(t *testing.T, store gatehouse.Store) *service.Service {
	t.Helper()
	t.Cleanup(func() { store.Close() })
	svc, err := service.Open(context.Background(), store, service.Config{})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := policy.Parse(examples.AIAssistantPolicyFile, examples.AIAssistantPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Apply(context.Background(), "test", doc, false); err != nil {
		t.Fatal(err)
	}
	return svc
}

// next returns the next event of ch, failing after 5 s.
func next(t *testing.T, ch <-chan gatehouse.Event) gatehouse.Event {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("the subscription closed")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return gatehouse.Event{}
}

func TestSubscribe(t *testing.T) {
	t.Parallel()
	for _, o := range storeOpeners {
		t.Run(o.name, func(t *testing.T) {
			ctx := context.Background()
			svc := openExample(t, o.open(t)())
			subCtx, cancel := context.WithCancel(ctx)
			ch := svc.Subscribe(subCtx)

			// A change is one policy event; a change that changes nothing
			// is none, so the next event is the following change's.
			v := svc.Version()
			if _, err := svc.SetUserTenants(ctx, "test", "carl@acme.example", []string{"acme-berlin"}); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.SetUserTenants(ctx, "test", "carl@acme.example", []string{"acme-berlin", "acme-milan"}); err != nil {
				t.Fatal(err)
			}
			if e := next(t, ch); e.Kind != gatehouse.EventPolicy || e.Version != v+1 {
				t.Errorf("after a change: %+v, want policy version %d", e, v+1)
			}

			// An action's moves, in order.
			bot := gatehouse.Caller{Subject: gatehouse.AgentRef("support-bot"), Credential: gatehouse.CredentialToken}
			olga := gatehouse.Caller{Subject: gatehouse.User("olga@acme.example"), Credential: gatehouse.CredentialToken}
			a, err := svc.AuthorizeToolCall(ctx, bot, gatehouse.Question{Request: gatehouse.Request{Subject: bot.Subject,
				OnBehalfOf: olga.Subject, Tenant: "acme-berlin"}, Tool: "process_refund",
				Args: map[string]any{"amount": "20.00", "currency": "EUR"}}, "")
			if err != nil || a.ActionID == "" {
				t.Fatalf("authorize = %+v, %v", a, err)
			}
			if _, err := svc.ConfirmAction(ctx, olga, a.ActionID); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.ActionExecuted(ctx, bot, a.ActionID); err != nil {
				t.Fatal(err)
			}
			for _, want := range []gatehouse.ActionStatus{gatehouse.ActionPending, gatehouse.ActionConfirmed, gatehouse.ActionExecuted} {
				if e := next(t, ch); e.Kind != gatehouse.EventAction || e.Action == nil || e.Action.ID != a.ActionID || e.Action.Status != want {
					t.Errorf("action event = %+v, want %s of %s", e, want, a.ActionID)
				}
			}
			cancel()
			for range ch {
				// Drained, then closed.
			}
			if n := svc.Subscribers(); n != 0 {
				t.Errorf("%d subscribers after cancelling, want 0", n)
			}
		})
	}
}

// A subscriber that does not read never holds writers up; it is told it
// missed events once it reads again.
func TestSubscribeSlow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, service.Config{})
	f.apply(basePolicy)
	slow := f.svc.Subscribe(t.Context())
	done := make(chan error, 1)
	go func() {
		for i := range 200 {
			tenants := []string{"general"}
			if i%2 == 0 {
				tenants = []string{"org"}
			}
			if _, err := f.svc.SetUserTenants(ctx, "test", "ann@example.com", tenants); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("200 writes did not finish in 30 s with a subscriber not reading")
	}
	resynced := false
	for range 64 + 1 {
		if next(t, slow).Kind == gatehouse.EventResync {
			resynced = true
		}
		if len(slow) == 0 {
			break
		}
	}
	// The buffer is full of old events; a new change brings the resync.
	if _, err := f.svc.SetUserTenants(ctx, "test", "ann@example.com", []string{"store-a"}); err != nil {
		t.Fatal(err)
	}
	for !resynced {
		if next(t, slow).Kind == gatehouse.EventResync {
			resynced = true
		}
	}
}

// A change another instance commits reaches this instance's subscribers
// through Follow (PostgreSQL's LISTEN/NOTIFY).
func TestSubscribeFollowsPostgres(t *testing.T) {
	t.Parallel()
	open := openPostgres(t)
	a := openExample(t, open())
	bStore := open()
	t.Cleanup(func() { bStore.Close() })
	b, err := service.Open(context.Background(), bStore, service.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := a.Subscribe(ctx)
	go a.Follow(ctx, time.Second, nil, nil)
	res, err := b.SetUserTenants(context.Background(), "test", "carl@acme.example", []string{"acme-berlin", "acme-milan"})
	if err != nil {
		t.Fatal(err)
	}
	for {
		e := next(t, ch)
		if e.Kind == gatehouse.EventPolicy && e.Version == res.Version {
			return
		}
	}
}
