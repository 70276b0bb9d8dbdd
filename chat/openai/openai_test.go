package openai_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/chat"
	"github.com/gatehouse/gatehouse/chat/openai"
)

// server is an OpenAI-compatible chat-completions endpoint under /v1 that
// answers every request with handle and records what it received.
type server struct {
	*httptest.Server
	mu       sync.Mutex
	requests []received
}

type received struct {
	path   string
	header http.Header
	body   []byte
}

func newServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read the request body: %v", err)
		}
		s.mu.Lock()
		s.requests = append(s.requests, received{path: r.URL.Path, header: r.Header.Clone(), body: body})
		s.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		handle(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) received(t *testing.T) []received {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.requests...)
}

// stream answers with events as server-sent events, as the API does:
// "data: <chunk>" and a blank line each, flushed one by one.
func stream(events ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		writeEvents(w, events...)
	}
}

func writeEvents(w http.ResponseWriter, events ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	for _, e := range events {
		fmt.Fprintf(w, "data: %s\n\n", e)
		w.(http.Flusher).Flush()
	}
}

const done = "[DONE]"

// chunk is a chat.completion.chunk with one choice, delta and finish
// reason as JSON ("null" for none).
func chunk(delta, finishReason string) string {
	return `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1767225600,"model":"gpt-test",` +
		`"system_fingerprint":"fp_1","choices":[{"index":0,"delta":` + delta +
		`,"logprobs":null,"finish_reason":` + finishReason + `}]}`
}

func text(s string) string {
	b, _ := json.Marshal(s)
	return chunk(`{"content":`+string(b)+`}`, "null")
}

var (
	roleChunk = chunk(`{"role":"assistant","content":"","refusal":null}`, "null")
	stopChunk = chunk(`{}`, `"stop"`)
)

func newModel(t *testing.T, s *server, edit func(*openai.Config)) *openai.Model {
	t.Helper()
	cfg := openai.Config{BaseURL: s.URL + "/v1", Model: "gpt-test", APIKey: "sk-test-key", Timeout: 10 * time.Second}
	if edit != nil {
		edit(&cfg)
	}
	m, err := openai.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

var hello = chat.ModelRequest{Messages: []gatehouse.Message{{Role: gatehouse.RoleUser, Content: "Hello"}}}

func TestCompleteStreamsText(t *testing.T) {
	s := newServer(t, stream(roleChunk, text("Hel"), text("lo, "), text("world"), stopChunk, done))
	var tokens []string
	reply, err := newModel(t, s, nil).Complete(t.Context(), hello, func(tok string) { tokens = append(tokens, tok) })
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if want := []string{"Hel", "lo, ", "world"}; !cmp.Equal(tokens, want) {
		t.Errorf("onToken calls = %q, want %q", tokens, want)
	}
	if diff := cmp.Diff(chat.Reply{Content: "Hello, world"}, reply); diff != "" {
		t.Errorf("reply (-want +got):\n%s", diff)
	}
}

// TestCompleteIgnoresOtherChoices: the reply is choice 0, and so are the
// tokens, should a server send more choices than the one asked for.
func TestCompleteIgnoresOtherChoices(t *testing.T) {
	other := strings.Replace(text("other"), `"index":0`, `"index":1`, 1)
	s := newServer(t, stream(roleChunk, text("one"), other, text(" answer"), stopChunk, done))
	var tokens []string
	reply, err := newModel(t, s, nil).Complete(t.Context(), hello, func(tok string) { tokens = append(tokens, tok) })
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if want := []string{"one", " answer"}; !cmp.Equal(tokens, want) {
		t.Errorf("onToken calls = %q, want %q", tokens, want)
	}
	if reply.Content != "one answer" {
		t.Errorf("reply content = %q, want %q", reply.Content, "one answer")
	}
}

// TestCompleteTokensArriveAsStreamed holds the stream open after the first
// piece: onToken must see it before the model has finished.
func TestCompleteTokensArriveAsStreamed(t *testing.T) {
	release := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeEvents(w, roleChunk, text("first"))
		<-release
		writeEvents(w, text(" second"), stopChunk, done)
	})
	reply, err := newModel(t, s, nil).Complete(t.Context(), hello, func(tok string) {
		if tok == "first" {
			close(release)
		}
	})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if reply.Content != "first second" {
		t.Errorf("reply content = %q, want %q", reply.Content, "first second")
	}
}

func TestCompleteAssemblesParallelToolCalls(t *testing.T) {
	s := newServer(t, stream(
		chunk(`{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"lookup_order","arguments":""}}]}`, "null"),
		chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"ord"}}]}`, "null"),
		chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"er_id\": \"A-"}}]}`, "null"),
		chunk(`{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"send_tracking","arguments":""}}]}`, "null"),
		chunk(`{"tool_calls":[{"index":1,"function":{"arguments":"{\"order_id\""}}]}`, "null"),
		chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"17\"}"}}]}`, "null"),
		chunk(`{"tool_calls":[{"index":1,"function":{"arguments":": \"B-2\", \"email\": true}"}}]}`, "null"),
		chunk(`{}`, `"tool_calls"`),
		done,
	))
	var tokens []string
	reply, err := newModel(t, s, nil).Complete(t.Context(), hello, func(tok string) { tokens = append(tokens, tok) })
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	want := chat.Reply{ToolCalls: []gatehouse.ToolCall{
		{ID: "call_a", Name: "lookup_order", Arguments: json.RawMessage(`{"order_id": "A-17"}`)},
		{ID: "call_b", Name: "send_tracking", Arguments: json.RawMessage(`{"order_id": "B-2", "email": true}`)},
	}}
	if diff := cmp.Diff(want, reply); diff != "" {
		t.Errorf("reply (-want +got):\n%s", diff)
	}
	if len(tokens) != 0 {
		t.Errorf("onToken calls = %q, want none", tokens)
	}
}

// TestCompleteKeepsInvalidArguments: arguments that are not JSON come back
// byte for byte, so the loop's json.Valid check sees what the model wrote.
func TestCompleteKeepsInvalidArguments(t *testing.T) {
	s := newServer(t, stream(
		chunk(`{"role":"assistant","content":"Let me check.","tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"lookup_order","arguments":"{\"order_id\": "}}]}`, "null"),
		chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"'A-17"}}]}`, "null"),
		chunk(`{}`, `"length"`),
		done,
	))
	reply, err := newModel(t, s, nil).Complete(t.Context(), hello, nil)
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if len(reply.ToolCalls) != 1 {
		t.Fatalf("tool calls = %+v, want one", reply.ToolCalls)
	}
	got := reply.ToolCalls[0].Arguments
	if want := `{"order_id": 'A-17`; string(got) != want {
		t.Errorf("arguments = %q, want %q", got, want)
	}
	if json.Valid(got) {
		t.Errorf("arguments %q are valid JSON; the test needs invalid ones", got)
	}
	if reply.Content != "Let me check." {
		t.Errorf("content = %q, want %q", reply.Content, "Let me check.")
	}
}

func TestCompleteRequest(t *testing.T) {
	s := newServer(t, stream(roleChunk, text("ok"), stopChunk, done))
	temperature := 0.2
	m := newModel(t, s, func(c *openai.Config) {
		c.Temperature = &temperature
		c.MaxTokens = 512
	})
	req := chat.ModelRequest{
		System: "You are the support assistant of Acme.",
		Messages: []gatehouse.Message{
			{ID: "m1", Role: gatehouse.RoleUser, Author: "user:olga@acme.example", Content: "Where is order A-17?"},
			{ID: "m2", Role: gatehouse.RoleAssistant, ToolCalls: []gatehouse.ToolCall{
				{ID: "call_a", Name: "lookup_order", Arguments: json.RawMessage(`{"order_id":"A-17"}`)},
				{ID: "call_b", Name: "process_refund", Arguments: json.RawMessage(`{"amount":"20.00"}`)},
			}},
			{ID: "m3", Role: gatehouse.RoleTool, ToolCallID: "call_a", ToolName: "lookup_order", Status: gatehouse.ToolCallDone, Content: `{"status":"shipped"}`},
			{ID: "m4", Role: gatehouse.RoleTool, ToolCallID: "call_b", ToolName: "process_refund", Status: gatehouse.ToolCallDenied, Content: "Refunds are disabled for this store."},
			{ID: "m5", Role: gatehouse.RoleAssistant, Content: "It has shipped."},
			{ID: "m6", Role: gatehouse.RoleUser, Content: "Thanks"},
		},
		Tools: []chat.ToolSpec{
			{Name: "lookup_order", Description: "Look an order up.", Parameters: json.RawMessage(
				`{"type":"object","properties":{"order_id":{"type":"string"},"limit":{"type":"integer","maximum":12345678901234567}},"required":["order_id"]}`)},
			{Name: "list_stores"},
		},
	}
	if _, err := m.Complete(t.Context(), req, func(string) {}); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	got := s.received(t)
	if len(got) != 1 {
		t.Fatalf("server received %d requests, want 1", len(got))
	}
	if got[0].path != "/v1/chat/completions" {
		t.Errorf("path = %q, want /v1/chat/completions", got[0].path)
	}
	if auth := got[0].header.Get("Authorization"); auth != "Bearer sk-test-key" {
		t.Errorf("Authorization = %q, want %q", auth, "Bearer sk-test-key")
	}
	want := `{
		"model": "gpt-test",
		"stream": true,
		"temperature": 0.2,
		"max_completion_tokens": 512,
		"messages": [
			{"role": "system", "content": "You are the support assistant of Acme."},
			{"role": "user", "content": "Where is order A-17?"},
			{"role": "assistant", "tool_calls": [
				{"id": "call_a", "type": "function", "function": {"name": "lookup_order", "arguments": "{\"order_id\":\"A-17\"}"}},
				{"id": "call_b", "type": "function", "function": {"name": "process_refund", "arguments": "{\"amount\":\"20.00\"}"}}
			]},
			{"role": "tool", "tool_call_id": "call_a", "content": "{\"status\":\"shipped\"}"},
			{"role": "tool", "tool_call_id": "call_b", "content": "Refunds are disabled for this store."},
			{"role": "assistant", "content": "It has shipped."},
			{"role": "user", "content": "Thanks"}
		],
		"tools": [
			{"type": "function", "function": {"name": "lookup_order", "description": "Look an order up.", "parameters":
				{"type":"object","properties":{"order_id":{"type":"string"},"limit":{"type":"integer","maximum":12345678901234567}},"required":["order_id"]}}},
			{"type": "function", "function": {"name": "list_stores", "parameters": {"type": "object"}}}
		]
	}`
	if diff := cmp.Diff(decodeJSON(t, []byte(want)), decodeJSON(t, got[0].body)); diff != "" {
		t.Errorf("request body (-want +got):\n%s\nbody: %s", diff, got[0].body)
	}
}

// decodeJSON decodes b keeping numbers as written, so that a schema's
// large integer is compared exactly.
func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// TestCompleteWithoutKey: an empty APIKey sends no Authorization, not even
// the OPENAI_API_KEY of the environment.
func TestCompleteWithoutKey(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-from-env")
	s := newServer(t, stream(roleChunk, text("ok"), stopChunk, done))
	m := newModel(t, s, func(c *openai.Config) { c.APIKey = "" })
	if _, err := m.Complete(t.Context(), hello, func(string) {}); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	got := s.received(t)
	if len(got) != 1 {
		t.Fatalf("server received %d requests, want 1", len(got))
	}
	if auth, ok := got[0].header["Authorization"]; ok {
		t.Errorf("Authorization = %q, want none", auth)
	}
}

// TestCompleteConcurrently: one Model serves several conversations at once
// (run with -race).
func TestCompleteConcurrently(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Messages []struct{ Content string } `json:"messages"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Messages) != 1 {
			t.Errorf("request messages %+v: %v", body.Messages, err)
			return
		}
		writeEvents(w, roleChunk, text("echo: "), text(body.Messages[0].Content), stopChunk, done)
	})
	m := newModel(t, s, nil)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			say := fmt.Sprintf("message %d", i)
			var streamed strings.Builder
			reply, err := m.Complete(t.Context(), chat.ModelRequest{Messages: []gatehouse.Message{{Role: gatehouse.RoleUser, Content: say}}},
				func(tok string) { streamed.WriteString(tok) })
			if err != nil {
				t.Errorf("Complete(%q): %v", say, err)
				return
			}
			if want := "echo: " + say; reply.Content != want || streamed.String() != want {
				t.Errorf("Complete(%q) = %q, streamed %q; want %q", say, reply.Content, streamed.String(), want)
			}
		})
	}
	wg.Wait()
}

// roundTripFunc is an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCompleteUsesHTTPClient(t *testing.T) {
	s := newServer(t, stream(roleChunk, text("ok"), stopChunk, done))
	var used atomic.Int32
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	m := newModel(t, s, func(c *openai.Config) { c.HTTPClient = client })
	if _, err := m.Complete(t.Context(), hello, nil); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if n := used.Load(); n != 1 {
		t.Errorf("the configured client made %d requests, want 1", n)
	}
}

func TestCompleteStreamErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		handle func(http.ResponseWriter, *http.Request)
		want   string
	}{
		{"invalid JSON chunk", stream(roleChunk, text("Hel"), `{"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":"lo"`, stopChunk, done), ""},
		{"chunk not an object", stream(roleChunk, `["not", "a", "chunk"]`, stopChunk, done), ""},
		{"chunk of another completion", stream(roleChunk, strings.Replace(text("lo"), "chatcmpl-1", "chatcmpl-2", 1), stopChunk, done), "chatcmpl-2"},
		{"error event", stream(roleChunk, `{"error":{"message":"the server is overloaded","type":"server_error"}}`), "overloaded"},
		{"ended before finish_reason", stream(roleChunk, text("Hel"), text("lo")), "finish_reason"},
		{"[DONE] before finish_reason", stream(roleChunk, text("Hel"), done), "finish_reason"},
		{"empty stream", stream(), "finish_reason"},
		{"tool call without id", stream(
			chunk(`{"role":"assistant","tool_calls":[{"index":0,"type":"function","function":{"name":"lookup_order","arguments":"{}"}}]}`, "null"),
			chunk(`{}`, `"tool_calls"`), done), "no id"},
		{"connection dropped", func(w http.ResponseWriter, r *http.Request) {
			writeEvents(w, roleChunk, text("Hel"))
			panic(http.ErrAbortHandler)
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.handle)
			reply, err := newModel(t, s, nil).Complete(t.Context(), hello, func(string) {})
			if err == nil {
				t.Fatalf("Complete = %+v, nil; want an error", reply)
			}
			t.Logf("Complete error: %v", err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Complete error = %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestCompleteHTTPErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   []string
	}{
		{http.StatusUnauthorized, `{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`,
			[]string{"401", "Incorrect API key provided."}},
		{http.StatusTooManyRequests, `{"error":{"message":"Rate limit reached.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			[]string{"429", "Rate limit reached."}},
		{http.StatusInternalServerError, `{"error":{"message":"The server had an error.","type":"server_error","param":null,"code":null}}`,
			[]string{"500", "The server had an error."}},
		{http.StatusBadGateway, `<html>bad gateway</html>`, []string{"502"}},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				// Were the client to retry, it would do so at once and
				// the request count below would show it.
				w.Header().Set("Retry-After-Ms", "0")
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			called := false
			_, err := newModel(t, s, nil).Complete(t.Context(), hello, func(string) { called = true })
			if err == nil {
				t.Fatal("Complete succeeded, want an error")
			}
			t.Logf("Complete error: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Complete error = %q, want it to mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "sk-test-key") {
				t.Errorf("Complete error = %q shows the API key", err)
			}
			if called {
				t.Error("onToken was called for an error response")
			}
			// One attempt: retrying is the agent loop's decision.
			if n := len(s.received(t)); n != 1 {
				t.Errorf("server received %d requests, want 1", n)
			}
		})
	}
}

// stalled starts a stream, sends one piece of text and then waits for the
// client to go away (or the test to end).
func stalled(t *testing.T) func(http.ResponseWriter, *http.Request) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return func(w http.ResponseWriter, r *http.Request) {
		writeEvents(w, roleChunk, text("Hel"))
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
}

// completeWithin runs Complete and fails the test if it has not returned
// within a few seconds.
func completeWithin(t *testing.T, m *openai.Model, ctx context.Context, onToken func(string)) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := m.Complete(ctx, hello, onToken)
		errc <- err
	}()
	select {
	case err := <-errc:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Complete did not return within 5s")
		return nil
	}
}

func TestCompleteCancelledMidStream(t *testing.T) {
	s := newServer(t, stalled(t))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var tokens atomic.Int32
	err := completeWithin(t, newModel(t, s, nil), ctx, func(string) {
		tokens.Add(1)
		cancel()
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Complete error = %v, want context.Canceled", err)
	}
	t.Logf("Complete error: %v", err)
	if n := tokens.Load(); n != 1 {
		t.Errorf("onToken called %d times, want 1", n)
	}
}

func TestCompleteCancelledBeforeRequest(t *testing.T) {
	s := newServer(t, stream(roleChunk, text("ok"), stopChunk, done))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := completeWithin(t, newModel(t, s, nil), ctx, func(string) {}); !errors.Is(err, context.Canceled) {
		t.Errorf("Complete error = %v, want context.Canceled", err)
	}
}

func TestCompleteTimeout(t *testing.T) {
	s := newServer(t, stalled(t))
	m := newModel(t, s, func(c *openai.Config) { c.Timeout = 100 * time.Millisecond })
	if err := completeWithin(t, m, t.Context(), func(string) {}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Complete error = %v, want context.DeadlineExceeded", err)
	}
}

func TestCompleteRefusesBadRequests(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  chat.ModelRequest
	}{
		{"tool parameters not JSON", chat.ModelRequest{Tools: []chat.ToolSpec{{Name: "t", Parameters: json.RawMessage(`{"type":`)}}}},
		{"tool parameters not an object", chat.ModelRequest{Tools: []chat.ToolSpec{{Name: "t", Parameters: json.RawMessage(`["object"]`)}}}},
		{"tool parameters null", chat.ModelRequest{Tools: []chat.ToolSpec{{Name: "t", Parameters: json.RawMessage(`null`)}}}},
		{"unknown role", chat.ModelRequest{Messages: []gatehouse.Message{{ID: "m1", Role: "narrator", Content: "Once"}}}},
		{"tool result without call", chat.ModelRequest{Messages: []gatehouse.Message{{ID: "m1", Role: gatehouse.RoleTool, Content: "42"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, stream(roleChunk, text("ok"), stopChunk, done))
			if _, err := newModel(t, s, nil).Complete(t.Context(), tc.req, func(string) {}); err == nil {
				t.Error("Complete succeeded, want an error")
			}
			if n := len(s.received(t)); n != 0 {
				t.Errorf("server received %d requests, want none", n)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	two, three := 2.0, 3.0
	for _, tc := range []struct {
		name string
		cfg  openai.Config
		ok   bool
	}{
		{"local server without key", openai.Config{BaseURL: "http://127.0.0.1:11434/v1", Model: "llama3.1"}, true},
		{"openai", openai.Config{BaseURL: "https://api.openai.com/v1", Model: "gpt-4.1-mini", APIKey: "sk-x", Temperature: &two, MaxTokens: 100}, true},
		{"no model", openai.Config{BaseURL: "https://api.openai.com/v1"}, false},
		{"no base URL", openai.Config{Model: "m"}, false},
		{"base URL without scheme", openai.Config{BaseURL: "localhost:8080/v1", Model: "m"}, false},
		{"base URL not http", openai.Config{BaseURL: "ftp://example.com/v1", Model: "m"}, false},
		{"base URL without host", openai.Config{BaseURL: "http:///v1", Model: "m"}, false},
		{"base URL unparsable", openai.Config{BaseURL: "http://[::1", Model: "m"}, false},
		{"temperature too high", openai.Config{BaseURL: "https://api.openai.com/v1", Model: "m", Temperature: &three}, false},
		{"negative max tokens", openai.Config{BaseURL: "https://api.openai.com/v1", Model: "m", MaxTokens: -1}, false},
		{"negative timeout", openai.Config{BaseURL: "https://api.openai.com/v1", Model: "m", Timeout: -time.Second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := openai.New(tc.cfg)
			if tc.ok && (err != nil || m == nil) {
				t.Errorf("New(%+v) = %v, %v; want a model", tc.cfg, m, err)
			}
			if !tc.ok && err == nil {
				t.Errorf("New(%+v) succeeded, want an error", tc.cfg)
			}
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
	t.Setenv("OPENAI_API_KEY", "sk-env")
	t.Setenv("GATEHOUSE_CHAT_MODEL", "qwen3")
	cfg, err := openai.ConfigFromEnv()
	if err != nil {
		t.Fatalf("ConfigFromEnv: %v", err)
	}
	want := openai.DefaultConfig()
	want.BaseURL, want.APIKey, want.Model = "http://127.0.0.1:8000/v1", "sk-env", "qwen3"
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("ConfigFromEnv (-want +got):\n%s", diff)
	}

	t.Setenv("OPENAI_BASE_URL", "")
	t.Setenv("OPENAI_API_KEY", "")
	if cfg, err = openai.ConfigFromEnv(); err != nil {
		t.Fatalf("ConfigFromEnv without base URL and key: %v", err)
	}
	if cfg.BaseURL != openai.DefaultBaseURL || cfg.APIKey != "" {
		t.Errorf("ConfigFromEnv without base URL and key = %+v, want the default base URL and no key", cfg)
	}

	t.Setenv("GATEHOUSE_CHAT_MODEL", "")
	if _, err := openai.ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "GATEHOUSE_CHAT_MODEL") {
		t.Errorf("ConfigFromEnv without a model: error = %v, want one naming GATEHOUSE_CHAT_MODEL", err)
	}
}
