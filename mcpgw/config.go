package mcpgw

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse"
)

// Config is the operator's gateway configuration: the upstream MCP servers.
// It lives in a file passed to serve (--mcp-config), never in the policy,
// because tenant administrators edit the policy over REST and a stdio
// upstream is a command the server runs.
type Config struct {
	Upstreams []Upstream
	// CallTimeout bounds one upstream call (default 30 s).
	CallTimeout time.Duration
	// MaxArgumentBytes bounds a call's arguments (default 64 KiB).
	MaxArgumentBytes int
}

// Upstream is one MCP server behind the gateway: a Streamable HTTP URL
// with the gateway's own headers (never the client's token), or a stdio
// command.
type Upstream struct {
	// Name identifies the upstream in the policy (tools[].upstream).
	Name string
	// URL is a Streamable HTTP endpoint; Headers are sent with every
	// request to it (the gateway's credentials).
	URL     string
	Headers map[string]string
	// Command, Args and Env start a stdio server. Of the gateway's own
	// environment it gets only HOME, LOGNAME, PATH, SHELL, TERM, TMPDIR,
	// USER, LANG and TZ: anything else it needs is in Env.
	Command string
	Args    []string
	Env     map[string]string
	// Unmapped says what happens to an upstream tool no policy tool names:
	// "deny" (the default: it is not shown and cannot be called) or
	// "permission NAME" (shown as upstream.tool to holders of NAME).
	Unmapped string
	// UnmappedPermission is the NAME of Unmapped, set by Validate; it is
	// empty for "deny".
	UnmappedPermission string
	// Resources and Prompts say who sees the upstream's resources (with
	// its resource templates) and its prompts, in the grammar of Unmapped:
	// "deny" (the default: none is shown) or "permission NAME".
	// ResourceItems and PromptItems decide single items instead, keyed by
	// a resource's URI or a template's URI template, and by a prompt's
	// name.
	Resources     string
	Prompts       string
	ResourceItems map[string]string
	PromptItems   map[string]string
}

// resourcePermission is the permission that shows the resource or
// resource template key, or "" if none is shown.
func (u *Upstream) resourcePermission(key string) string {
	return itemPermission(u.Resources, u.ResourceItems, key)
}

// promptPermission is the permission that shows the prompt name, or "".
func (u *Upstream) promptPermission(name string) string {
	return itemPermission(u.Prompts, u.PromptItems, name)
}

// passesItems reports whether any of the upstream's resources or prompts
// can be shown, so that the gateway asks it for them at all.
func (u *Upstream) passesItems() (resources, prompts bool) {
	passes := func(def string, items map[string]string) bool {
		if p, _ := parseRule(def); p != "" {
			return true
		}
		for _, r := range items {
			if p, _ := parseRule(r); p != "" {
				return true
			}
		}
		return false
	}
	return passes(u.Resources, u.ResourceItems), passes(u.Prompts, u.PromptItems)
}

// itemPermission is the permission of key: its item's rule, else def's.
func itemPermission(def string, items map[string]string, key string) string {
	rule, ok := items[key]
	if !ok {
		rule = def
	}
	perm, _ := parseRule(rule)
	return perm
}

// parseRule parses "deny" (or "") to "" and "permission NAME" to NAME.
func parseRule(rule string) (string, bool) {
	switch mode, perm, _ := strings.Cut(strings.TrimSpace(rule), " "); mode {
	case "", "deny":
		return "", true
	case "permission":
		perm = strings.TrimSpace(perm)
		return perm, perm != ""
	}
	return "", false
}

// DefaultConfig returns the limits a file leaves unset.
func DefaultConfig() Config {
	return Config{CallTimeout: 30 * time.Second, MaxArgumentBytes: 64 << 10}
}

// fileConfig is the YAML form of Config:
//
//	call_timeout: 30s
//	upstreams:
//	  - name: store
//	    url: https://mcp.store.internal/mcp
//	    headers: {Authorization: "Bearer …"}
//	    unmapped: deny
//	  - name: everything
//	    command: npx
//	    args: ["-y", "@modelcontextprotocol/server-everything"]
//	    env: {NODE_ENV: production}
//	    unmapped: permission use_ai_advanced_tools
//	    resources: permission use_ai_advanced_tools
//	    resource_items: {"demo://resource/static/document/architecture.md": deny}
//	    prompts: deny
//	    prompt_items: {simple-prompt: permission access_ai_chat}
type fileConfig struct {
	CallTimeout      string         `yaml:"call_timeout"`
	MaxArgumentBytes int            `yaml:"max_argument_bytes"`
	Upstreams        []fileUpstream `yaml:"upstreams"`
}

type fileUpstream struct {
	Name     string            `yaml:"name"`
	URL      string            `yaml:"url"`
	Headers  map[string]string `yaml:"headers"`
	Command  string            `yaml:"command"`
	Args     []string          `yaml:"args"`
	Env      map[string]string `yaml:"env"`
	Unmapped string            `yaml:"unmapped"`

	Resources     string            `yaml:"resources"`
	Prompts       string            `yaml:"prompts"`
	ResourceItems map[string]string `yaml:"resource_items"`
	PromptItems   map[string]string `yaml:"prompt_items"`
}

// ParseConfig reads a gateway configuration; unknown keys and malformed
// values are ErrInvalid naming the file and the upstream.
func ParseConfig(name string, data []byte) (Config, error) {
	var f fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, gatehouse.Invalidf("mcp config %s: %v", name, err)
	}
	c := DefaultConfig()
	if f.CallTimeout != "" {
		d, err := time.ParseDuration(f.CallTimeout)
		if err != nil || d <= 0 {
			return Config{}, gatehouse.Invalidf("mcp config %s: call_timeout %q: want a positive duration such as 30s", name, f.CallTimeout)
		}
		c.CallTimeout = d
	}
	if f.MaxArgumentBytes < 0 {
		return Config{}, gatehouse.Invalidf("mcp config %s: max_argument_bytes %d is negative", name, f.MaxArgumentBytes)
	}
	if f.MaxArgumentBytes > 0 {
		c.MaxArgumentBytes = f.MaxArgumentBytes
	}
	for _, u := range f.Upstreams {
		c.Upstreams = append(c.Upstreams, Upstream{Name: u.Name, URL: u.URL, Headers: u.Headers,
			Command: u.Command, Args: u.Args, Env: u.Env, Unmapped: u.Unmapped,
			Resources: u.Resources, Prompts: u.Prompts, ResourceItems: u.ResourceItems, PromptItems: u.PromptItems})
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("mcp config %s: %w", name, err)
	}
	return c, nil
}

// LoadConfig reads the gateway configuration file at path.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, gatehouse.Invalidf("mcp config: %v", err)
	}
	return ParseConfig(path, data)
}

// Validate reports a configuration that cannot work, and parses each
// upstream's Unmapped.
func (c *Config) Validate() error {
	seen := map[string]bool{}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		switch {
		case !validName(u.Name):
			return gatehouse.Invalidf("upstream %d: name %q: want letters, digits, _ and -", i, u.Name)
		case seen[u.Name]:
			return gatehouse.Invalidf("upstream %s is declared twice", u.Name)
		case (u.URL == "") == (u.Command == ""):
			return gatehouse.Invalidf("upstream %s: give exactly one of url and command", u.Name)
		}
		seen[u.Name] = true
		if u.URL != "" {
			p, err := url.Parse(u.URL)
			if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
				return gatehouse.Invalidf("upstream %s: url %q: want an absolute http(s) URL", u.Name, u.URL)
			}
		}
		if (u.Command != "") && (len(u.Headers) > 0) {
			return gatehouse.Invalidf("upstream %s: headers are for a url upstream", u.Name)
		}
		if u.URL != "" && (len(u.Args) > 0 || len(u.Env) > 0) {
			return gatehouse.Invalidf("upstream %s: args and env are for a command upstream", u.Name)
		}
		perm, ok := parseRule(u.Unmapped)
		if !ok {
			return gatehouse.Invalidf("upstream %s: unmapped %q: want deny or permission NAME", u.Name, u.Unmapped)
		}
		// Kept in its written form so that validating again (New validates
		// what ParseConfig returned) parses it again.
		u.Unmapped, u.UnmappedPermission = "deny", perm
		if perm != "" {
			u.Unmapped = "permission " + perm
		}
		for _, r := range []struct{ key, rule string }{{"resources", u.Resources}, {"prompts", u.Prompts}} {
			if _, ok := parseRule(r.rule); !ok {
				return gatehouse.Invalidf("upstream %s: %s %q: want deny or permission NAME", u.Name, r.key, r.rule)
			}
		}
		for _, items := range []struct {
			key   string
			rules map[string]string
		}{{"resource_items", u.ResourceItems}, {"prompt_items", u.PromptItems}} {
			for k, rule := range items.rules {
				if _, ok := parseRule(rule); !ok || k == "" {
					return gatehouse.Invalidf("upstream %s: %s %q: %q: want deny or permission NAME", u.Name, items.key, k, rule)
				}
			}
		}
	}
	if c.CallTimeout <= 0 || c.MaxArgumentBytes <= 0 {
		return gatehouse.Invalidf("call timeout and argument limit must be positive")
	}
	return nil
}

// validName reports whether s may name an upstream: it is part of the tool
// names the gateway shows.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
