package policy

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/gatehouse/gatehouse"
	"go.yaml.in/yaml/v3"
)

// Marshal writes p as a document in format "yaml" or "json". The output is
// deterministic — objects sorted by id within a section, plans in tier order
// — and parses back to an equal policy.
func Marshal(p *gatehouse.Policy, format string) ([]byte, error) {
	objs, err := p.Objects()
	if err != nil {
		return nil, err
	}
	canonical, err := gatehouse.PolicyFromObjects(objs)
	if err != nil {
		return nil, err
	}
	js, err := json.MarshalIndent(canonical, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	switch format {
	case "json":
		return append(js, '\n'), nil
	case "yaml":
	default:
		return nil, gatehouse.Invalidf("unknown format %q, want yaml or json", format)
	}
	// JSON is YAML: re-encode the node tree in block style, keeping field order.
	var root yaml.Node
	if err := yaml.Unmarshal(js, &root); err != nil {
		return nil, fmt.Errorf("convert policy to YAML: %w", err)
	}
	plain(&root)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// plain drops JSON's quoting and flow style; the encoder quotes again
// wherever a plain scalar would read as something else.
func plain(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plain(c)
	}
}
