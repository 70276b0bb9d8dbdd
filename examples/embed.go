// Package examples ships the example policies inside the binary, so that
// `gatehouse demo` runs from any directory.
package examples

import (
	_ "embed"
	"slices"
)

//go:embed ai-assistant/policy.yaml
var aiAssistantPolicy []byte

// AIAssistantPolicyFile is the path of the AI assistant example in the
// repository, for messages that name it.
const AIAssistantPolicyFile = "examples/ai-assistant/policy.yaml"

// AIAssistantPolicy returns a copy of ai-assistant/policy.yaml.
func AIAssistantPolicy() []byte { return slices.Clone(aiAssistantPolicy) }
