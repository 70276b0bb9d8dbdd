package tools_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/chat"
	"github.com/gatehouse/gatehouse/chat/tools"
)

// The demo tools answer the same arguments the same way and refuse
// missing ones.
func TestDemo(t *testing.T) {
	t.Parallel()
	call := chat.Call{Tool: "analyze_loan", Arguments: json.RawMessage(`{"loan_id": "L-1"}`)}
	a, err := tools.Demo{}.Execute(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := tools.Demo{}.Execute(context.Background(), call)
	if a != b || !strings.Contains(a, `"loan_id":"L-1"`) {
		t.Errorf("answers %q and %q", a, b)
	}
	for _, c := range []chat.Call{
		{Tool: "analyze_loan", Arguments: json.RawMessage(`{}`)},
		{Tool: "process_refund", Arguments: json.RawMessage(`{"order_id": "1", "amount": "2"}`)},
		{Tool: "teleport"},
	} {
		if _, err := (tools.Demo{}).Execute(context.Background(), c); err == nil {
			t.Errorf("%s %s: no error", c.Tool, c.Arguments)
		}
	}
}

// The HTTP executor POSTs the call with the gateway's headers and returns
// the answer; errors, slow answers and large ones fail.
func TestHTTP(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got chat.Call
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer gateway" || r.Method != http.MethodPost {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		var c chat.Call
		_ = json.NewDecoder(r.Body).Decode(&c)
		switch c.Tool {
		case "slow":
			time.Sleep(300 * time.Millisecond)
		case "big":
			w.Write([]byte(strings.Repeat("x", 200)))
			return
		case "broken":
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		mu.Lock()
		got = c
		mu.Unlock()
		w.Write([]byte(`{"ok": true}`))
	}))
	defer srv.Close()
	h, err := tools.NewHTTP(tools.HTTP{URL: srv.URL, Headers: map[string]string{"Authorization": "Bearer gateway"},
		Specs: []chat.ToolSpec{{Name: "lookup"}}, Timeout: 100 * time.Millisecond, MaxResultBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Execute(context.Background(), chat.Call{Tool: "lookup", Arguments: json.RawMessage(`{"id": 1}`), Tenant: "acme", ConversationID: "th_1"})
	mu.Lock()
	seen := got
	mu.Unlock()
	if err != nil || out != `{"ok": true}` || seen.Tenant != "acme" || seen.ConversationID != "th_1" {
		t.Errorf("Execute = %q, %v; the server got %+v", out, err, seen)
	}
	for _, tool := range []string{"slow", "big", "broken"} {
		if _, err := h.Execute(context.Background(), chat.Call{Tool: tool}); err == nil {
			t.Errorf("%s: no error", tool)
		}
	}
	for _, bad := range []tools.HTTP{{URL: "ftp://x", Specs: h.Specs}, {URL: srv.URL}} {
		if _, err := tools.NewHTTP(bad); !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("NewHTTP(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	mux := tools.Mux{tools.Demo{}, h}
	if _, err := mux.Execute(context.Background(), chat.Call{Tool: "lookup"}); err != nil {
		t.Errorf("mux lookup: %v", err)
	}
	if _, err := mux.Execute(context.Background(), chat.Call{Tool: "nothing"}); err == nil {
		t.Error("mux runs an unknown tool")
	}
}
