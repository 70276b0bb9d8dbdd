package billing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse"
)

// DefaultGracePeriod is how long a customer whose payment failed keeps its
// plan before it is downgraded.
const DefaultGracePeriod = 72 * time.Hour

// MinSecretLength is the shortest webhook secret Validate accepts, in bytes.
const MinSecretLength = 16

// Config is how payment events map onto Gatehouse: which plan each price
// buys, whom each customer pays for, how long a failed payment is
// tolerated, and the secrets webhooks are signed with.
type Config struct {
	// Secrets verify webhook signatures; any one may match, so a new
	// secret can be added before the old one is removed.
	Secrets []string
	// Tolerance is how far a signature's timestamp may be from now.
	Tolerance time.Duration
	// GracePeriod is how long after a failed payment the customer keeps
	// its plan; 0 downgrades at once.
	GracePeriod time.Duration
	// Prices maps the provider's price ids to plan names.
	Prices map[string]string
	// Customers maps the provider's customer ids to what they pay for.
	Customers map[string]Target
	// DowngradePlan is the plan of a customer whose subscription ended;
	// empty means the policy's lowest plan.
	DowngradePlan string
}

// DefaultConfig returns a configuration without secrets or mappings.
func DefaultConfig() Config {
	return Config{Tolerance: DefaultTolerance, GracePeriod: DefaultGracePeriod}
}

// Validate reports a configuration that cannot work.
func (c *Config) Validate() error {
	switch {
	case len(c.Secrets) == 0:
		return gatehouse.Invalidf("billing: no webhook secret")
	case c.Tolerance <= 0:
		return gatehouse.Invalidf("billing: tolerance %v is not positive", c.Tolerance)
	case c.GracePeriod < 0:
		return gatehouse.Invalidf("billing: grace period %v is negative", c.GracePeriod)
	}
	for _, s := range c.Secrets {
		if len(s) < MinSecretLength {
			return gatehouse.Invalidf("billing: a webhook secret has %d bytes, want at least %d", len(s), MinSecretLength)
		}
	}
	for price, plan := range c.Prices {
		if !isID(price) || plan == "" {
			return gatehouse.Invalidf("billing: price %q: want an id and a plan", price)
		}
	}
	for cus, t := range c.Customers {
		if !isID(cus) {
			return gatehouse.Invalidf("billing: customer id %q is not printable text", cus)
		}
		if _, err := ParseTarget(t.String()); err != nil {
			return fmt.Errorf("billing: customer %s: %w", cus, err)
		}
	}
	return nil
}

// UnknownPlans returns the plans the configuration names that p does not
// declare, sorted; events that would set them change nothing.
func (c *Config) UnknownPlans(p *gatehouse.Policy) []string {
	var out []string
	for _, plan := range append(mapValues(c.Prices), c.DowngradePlan) {
		if plan != "" && !slices.ContainsFunc(p.Plans, func(pl gatehouse.Plan) bool { return pl.Name == plan }) {
			out = append(out, plan)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// Target is what a customer pays for: a tenant (the organization pays, its
// stores inherit) or a user (B2C).
type Target struct {
	Kind gatehouse.Kind // gatehouse.KindTenant or gatehouse.KindUser
	ID   string         // the tenant id or the normalized email
}

// ParseTarget parses "tenant:ID" or "user:EMAIL".
func ParseTarget(s string) (Target, error) {
	kind, id, _ := strings.Cut(strings.TrimSpace(s), ":")
	id = strings.TrimSpace(id)
	switch gatehouse.Kind(kind) {
	case gatehouse.KindTenant:
		if isID(id) {
			return Target{Kind: gatehouse.KindTenant, ID: id}, nil
		}
	case gatehouse.KindUser:
		if ref, err := gatehouse.ParseSubject("user:" + id); err == nil {
			return Target{Kind: gatehouse.KindUser, ID: ref.ID}, nil
		}
	}
	return Target{}, gatehouse.Invalidf("billing target %q: want tenant:ID or user:EMAIL", s)
}

// String formats t as "tenant:ID" or "user:EMAIL".
func (t Target) String() string { return string(t.Kind) + ":" + t.ID }

// fileConfig is the billing configuration file.
type fileConfig struct {
	Prices        map[string]string `yaml:"prices"`
	Customers     map[string]string `yaml:"customers"`
	GracePeriod   string            `yaml:"grace_period"`
	Tolerance     string            `yaml:"tolerance"`
	DowngradePlan string            `yaml:"downgrade_plan"`
}

// ParseConfig reads a billing configuration file (YAML or JSON) named name
// into DefaultConfig:
//
//	prices: {price_pro_monthly: pro}        # price id → plan
//	customers: {cus_123: "tenant:globex"}   # customer id → tenant:ID | user:EMAIL
//	grace_period: 72h
//	tolerance: 5m
//	downgrade_plan: free                    # default: the lowest plan
//
// Unknown keys and malformed values are ErrInvalid. Secrets are not part
// of the file.
func ParseConfig(name string, data []byte) (Config, error) {
	c := DefaultConfig()
	var f fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, gatehouse.Invalidf("billing config %s: %v", name, err)
	}
	for _, d := range []struct {
		key string
		in  string
		out *time.Duration
	}{{"grace_period", f.GracePeriod, &c.GracePeriod}, {"tolerance", f.Tolerance, &c.Tolerance}} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil {
			return Config{}, gatehouse.Invalidf("billing config %s: %s: %v", name, d.key, err)
		}
		*d.out = v
	}
	c.Prices, c.DowngradePlan = f.Prices, f.DowngradePlan
	c.Customers = make(map[string]Target, len(f.Customers))
	for cus, s := range f.Customers {
		t, err := ParseTarget(s)
		if err != nil {
			return Config{}, fmt.Errorf("billing config %s: customer %s: %w", name, cus, err)
		}
		c.Customers[cus] = t
	}
	return c, nil
}

// LoadConfig reads the billing configuration file at path.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, gatehouse.Invalidf("billing config: %v", err)
	}
	return ParseConfig(path, data)
}
