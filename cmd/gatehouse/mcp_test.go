package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/gatehouse/gatehouse/mcpgw"
)

// startStdio runs `gatehouse mcp stdio args…` in-process with
// GATEHOUSE_API_KEY key, and connects an MCP client to its stdin and
// stdout. done yields the command's exit status once the client closes.
func startStdio(t *testing.T, db, key string, args ...string) (cs *mcp.ClientSession, done <-chan int, stderr *syncBuffer) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	stderr = &syncBuffer{}
	env := map[string]string{"GATEHOUSE_DB": db, "USER": "tester", "LANG": "C", "GATEHOUSE_API_KEY": key}
	m := NewMain(func(k string) string { return env[k] }, inR, outW, stderr)
	codes := make(chan int, 1)
	go func() {
		err := m.ParseFlags(append([]string{"mcp", "stdio"}, args...))
		if err == nil {
			err = m.Run(context.Background())
		}
		if cerr := m.Close(); err == nil {
			err = cerr
		}
		outW.Close()
		codes <- m.report(err)
	}()
	client := mcp.NewClient(&mcp.Implementation{Name: "test-ide", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		t.Fatalf("connect to mcp stdio: %v\n%s", err, stderr)
	}
	return cs, codes, stderr
}

func apiKey(t *testing.T, db, subject, scopes string) (token, id string) {
	t.Helper()
	r := run(t, db, "apikey", "create", "ide", "--subject", subject, "--scopes", scopes, "--json")
	var out struct {
		Token string `json:"token"`
		Key   struct {
			ID string `json:"id"`
		} `json:"key"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil {
		t.Fatalf("apikey create: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return out.Token, out.Key.ID
}

// mcp stdio serves the API key's subject in --tenant: its tools, a call
// decided through the one door (a denial is isError with its reason), the
// demo store's resources; a key revoked meanwhile refuses the next
// request; closing stdin ends the command with status 0.
func TestMCPStdio(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	token, id := apiKey(t, db, "user:olga@acme.example", "mcp")
	cs, done, stderr := startStdio(t, db, token, "--tenant", "acme-berlin")
	var names []string
	for tool, err := range cs.Tools(context.Background(), nil) {
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	if want := []string{"apply_discount", "cancel_order", "lookup_order", "process_refund", "send_tracking"}; !slices.Equal(names, want) {
		t.Errorf("olga's tools over stdio = %v, want %v", names, want)
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "process_refund",
		Arguments: map[string]any{"order_id": "A-1", "amount": "5000.00", "currency": "EUR"}})
	if err != nil || !res.IsError || res.Meta[mcpgw.MetaReason] != "limit_exceeded" {
		t.Errorf("a refund over the limit = %+v, %v; want isError limit_exceeded", res, err)
	}
	if r, err := cs.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: "store://orders/A-1"}); err != nil || len(r.Contents) != 1 {
		t.Errorf("read store://orders/A-1 = %+v, %v", r, err)
	}
	if r := run(t, db, "apikey", "revoke", id); r.code != 0 {
		t.Fatalf("revoke: %s", r.stderr)
	}
	_, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "lookup_order", Arguments: map[string]any{"order_id": "A-1"}})
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) || !strings.Contains(string(rpcErr.Data), `"unauthorized"`) {
		t.Errorf("a call after the key was revoked = %v, want refused as unauthorized", err)
	}
	cs.Close()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("mcp stdio exited %d after the client closed, want 0:\n%s", code, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("mcp stdio did not end 10 s after its client closed stdin")
	}
}

// Without an active key with the mcp scope mcp stdio does not start.
func TestMCPStdioCredential(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	check, _ := apiKey(t, db, "user:olga@acme.example", "check")
	for _, tc := range []struct {
		name, key, want string
	}{
		{"no key", "", "GATEHOUSE_API_KEY is not set"},
		{"not a key", "ghk_nosuch_secret", "not an active API key"},
		{"no mcp scope", check, "not an active API key"},
	} {
		var stdout, stderr bytes.Buffer
		env := map[string]string{"GATEHOUSE_DB": db, "USER": "tester", "LANG": "C", "GATEHOUSE_API_KEY": tc.key}
		m := NewMain(func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
		err := m.ParseFlags([]string{"mcp", "stdio", "--tenant", "acme-berlin"})
		if err == nil {
			err = m.Run(context.Background())
		}
		m.Close()
		if code := m.report(err); code != exitUsage || !strings.Contains(stderr.String(), tc.want) || stdout.Len() != 0 {
			t.Errorf("%s: exit %d, stderr %q, stdout %q; want %d naming %q and nothing on stdout", tc.name, code, stderr.String(), stdout.String(), exitUsage, tc.want)
		}
	}
}
