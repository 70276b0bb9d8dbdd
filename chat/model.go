package chat

import (
	"context"
	"encoding/json"

	"github.com/gatehouse/gatehouse"
)

// Model is a language model the agent loop talks to: given the
// conversation so far and the tools it may call, it answers with text,
// tool calls, or both. Implementations: Scripted (deterministic rules, for
// the demo and tests) and package chat/openai (any OpenAI-compatible
// chat-completions API).
type Model interface {
	// Complete answers req. It calls onToken with each piece of the answer's
	// text as it arrives (in order, from the calling goroutine or one
	// goroutine at a time) and returns the whole reply once the model is
	// done. An error means the reply is unusable; text already passed to
	// onToken is then discarded by the caller.
	Complete(ctx context.Context, req ModelRequest, onToken func(string)) (Reply, error)
}

// ModelRequest is one call of a Model.
type ModelRequest struct {
	// System is the system prompt.
	System string
	// Messages is the conversation, oldest first: user messages (with the
	// text of their attachments inlined), assistant messages with their
	// tool calls, and one RoleTool message per tool call with its result.
	Messages []gatehouse.Message
	// Tools are the only tools the model may call.
	Tools []ToolSpec
}

// ToolSpec is a tool as a model sees it.
type ToolSpec struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Parameters is the JSON Schema of the arguments, an object schema.
	Parameters json.RawMessage `json:"parameters,omitempty"`
}

// Reply is a model's answer: Content, and the tools it wants called, with
// the arguments as it wrote them (which may not be valid JSON: the loop
// checks).
type Reply struct {
	Content   string
	ToolCalls []gatehouse.ToolCall
}
