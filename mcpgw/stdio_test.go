package mcpgw_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/gatehouse/gatehouse/mcpgw"
)

// stdioServerEnv makes the test binary, started by the gateway as a stdio
// upstream, serve envServer instead of running the tests.
const stdioServerEnv = "GATEHOUSE_MCPGW_TEST_STDIO_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(stdioServerEnv) == "1" {
		if err := envServer().Run(context.Background(), &mcp.StdioTransport{}); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// envServer has one tool, env, that shows the process's environment, as
// the reference server's get-env does.
func envServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "env", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "env", Description: "The server's environment."},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.Join(os.Environ(), "\n")}}}, nil, nil
		})
	return s
}

// A stdio upstream gets PATH, HOME and its configured env, never the rest
// of the gateway's environment: an upstream may show its environment to
// whoever may call it, and the gateway's holds its secrets.
func TestStdioUpstreamEnvironment(t *testing.T) {
	const secret = "jwt-secret-that-must-stay-in-the-gateway"
	t.Setenv("GATEHOUSE_JWT_SECRET", secret)
	t.Setenv("PATH", "/usr/bin:/bin")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(c *mcpgw.Config) {
		c.Upstreams = append(c.Upstreams, mcpgw.Upstream{Name: "local", Command: exe,
			Env: map[string]string{stdioServerEnv: "1", "LOCAL_SETTING": "on"}, Unmapped: "permission manage_ai_tools"})
	})
	olga := f.connect("user:olga@acme.example", "acme-berlin", "", nil)
	res := olga.call(t, "env", nil)
	env := strings.Split(text(res), "\n")
	if res.IsError {
		t.Fatalf("env = %+v %q", res, text(res))
	}
	for _, want := range []string{"PATH=/usr/bin:/bin", "LOCAL_SETTING=on", stdioServerEnv + "=1"} {
		if !slices.Contains(env, want) {
			t.Errorf("the upstream's environment %q lacks %s", env, want)
		}
	}
	if strings.Contains(text(res), secret) {
		t.Errorf("the upstream's environment has the gateway's GATEHOUSE_JWT_SECRET: %q", env)
	}
}
