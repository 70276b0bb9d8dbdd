// Package openai is a chat.Model on any OpenAI-compatible chat-completions
// API (OpenAI itself, or a local server such as llama.cpp, vLLM or Ollama),
// built on the official SDK, github.com/openai/openai-go/v3.
//
// Every Complete is one streaming request (stream: true): the system
// prompt first, then the conversation — user messages, assistant messages
// with their tool_calls, and tool results with their tool_call_id — and the
// tools as function tools. Text reaches onToken as the deltas arrive; tool
// calls, whose arguments arrive in pieces, are assembled by the SDK's
// ChatCompletionAccumulator and returned once the model has finished.
//
// Usage:
//
//	cfg, err := openai.ConfigFromEnv()
//	if err != nil { … }
//	model, err := openai.New(cfg)
//	if err != nil { … }
//	reply, err := model.Complete(ctx, chat.ModelRequest{
//		System:   "You are the support assistant of Acme.",
//		Messages: messages,
//		Tools:    []chat.ToolSpec{{Name: "lookup_order", Parameters: schema}},
//	}, func(text string) { fmt.Print(text) })
//
// ConfigFromEnv reads three variables:
//
//	OPENAI_BASE_URL       the API's base URL (default https://api.openai.com/v1;
//	                      e.g. http://127.0.0.1:11434/v1 for a local Ollama)
//	OPENAI_API_KEY        the bearer token; may be empty for a local server
//	GATEHOUSE_CHAT_MODEL  the model name, required (e.g. gpt-4.1-mini, llama3.1)
//
// Only the Config reaches the SDK: the SDK's own reading of OPENAI_* variables
// is not used, so an OPENAI_API_KEY in the environment is never sent to a
// base URL the Config did not pair it with.
//
// Complete makes exactly one attempt and does not retry: an HTTP error (401,
// 429, 500, …) comes back at once as an error naming the status, and the
// agent loop decides what to do. A stream that ends before the model's
// finish_reason, or carries a chunk that is not a chat.completion.chunk
// object, is an error too, as are a cancelled context and Config.Timeout.
//
// A tool call's Arguments are the bytes the model wrote, unchanged, even
// when they are not valid JSON (a model may stop mid-object): the caller
// checks json.Valid before using them.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"time"

	sdk "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/chat"
)

// DefaultBaseURL is OpenAI's API.
const DefaultBaseURL = "https://api.openai.com/v1"

// DefaultTimeout is DefaultConfig's bound on one Complete.
const DefaultTimeout = 2 * time.Minute

// Config configures a Model.
type Config struct {
	// BaseURL is the API's base URL, http or https, up to and including
	// the version path ("https://api.openai.com/v1").
	BaseURL string
	// Model is the model's name, e.g. "gpt-4.1-mini"; required.
	Model string
	// APIKey is sent as "Authorization: Bearer <key>"; empty sends no
	// Authorization header (local servers need none).
	APIKey string
	// Timeout bounds one Complete, stream included; 0 leaves it to the
	// caller's context.
	Timeout time.Duration
	// HTTPClient makes the requests; nil uses http.DefaultClient.
	HTTPClient *http.Client
	// Temperature, when set, is the sampling temperature, 0 to 2.
	Temperature *float64
	// MaxTokens, when positive, bounds the tokens of one reply
	// (max_completion_tokens); 0 leaves it to the server.
	MaxTokens int
}

// DefaultConfig returns a Config for OpenAI's API with DefaultTimeout; the
// model is still to be set.
func DefaultConfig() Config {
	return Config{BaseURL: DefaultBaseURL, Timeout: DefaultTimeout}
}

// ConfigFromEnv returns DefaultConfig with OPENAI_BASE_URL, OPENAI_API_KEY
// and GATEHOUSE_CHAT_MODEL applied (an unset or empty variable keeps the
// default), validated.
func ConfigFromEnv() (Config, error) {
	cfg := DefaultConfig()
	if v := os.Getenv("OPENAI_BASE_URL"); v != "" {
		cfg.BaseURL = v
	}
	cfg.APIKey = os.Getenv("OPENAI_API_KEY")
	cfg.Model = os.Getenv("GATEHOUSE_CHAT_MODEL")
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("chat model from the environment: %w", err)
	}
	return cfg, nil
}

// Validate reports a Config New refuses.
func (c Config) Validate() error {
	if c.Model == "" {
		return errors.New("openai: the model is required (GATEHOUSE_CHAT_MODEL)")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		return fmt.Errorf("openai: base URL %q: %w", c.BaseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("openai: base URL %q is not an http(s) URL", c.BaseURL)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("openai: negative timeout %s", c.Timeout)
	}
	if t := c.Temperature; t != nil && (math.IsNaN(*t) || *t < 0 || *t > 2) {
		return fmt.Errorf("openai: temperature %v is not between 0 and 2", *t)
	}
	if c.MaxTokens < 0 {
		return fmt.Errorf("openai: negative max tokens %d", c.MaxTokens)
	}
	return nil
}

// Model is a chat.Model on an OpenAI-compatible chat-completions API. It is
// safe for concurrent use.
type Model struct {
	cfg         Config
	completions sdk.ChatCompletionService
}

var _ chat.Model = (*Model)(nil)

// New returns a Model for cfg, or cfg's Validate error.
func New(cfg Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := []option.RequestOption{
		option.WithBaseURL(cfg.BaseURL),
		option.WithMaxRetries(0),
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, option.WithHTTPClient(cfg.HTTPClient))
	}
	// The service, not sdk.NewClient: NewClient would add the OPENAI_*
	// environment (a key, an organization, headers) to what cfg says.
	return &Model{cfg: cfg, completions: sdk.NewChatCompletionService(opts...)}, nil
}

// Complete sends req as one streaming chat completion; see the package
// documentation for what it sends and which errors it returns. onToken may
// be nil.
func (m *Model) Complete(ctx context.Context, req chat.ModelRequest, onToken func(string)) (chat.Reply, error) {
	params, err := m.params(req)
	if err != nil {
		return chat.Reply{}, err
	}
	if m.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.cfg.Timeout)
		defer cancel()
	}
	stream := m.completions.NewStreaming(ctx, params)
	defer stream.Close()

	var acc sdk.ChatCompletionAccumulator
	for stream.Next() {
		chunk := stream.Current()
		if !acc.AddChunk(chunk) {
			return chat.Reply{}, m.failure(fmt.Errorf("chunk %q does not continue the completion", chunk.ID))
		}
		for _, choice := range chunk.Choices {
			if choice.Index == 0 && choice.Delta.Content != "" && onToken != nil {
				onToken(choice.Delta.Content)
			}
		}
	}
	err = stream.Err()
	if err == nil {
		var reply chat.Reply
		if reply, err = replyOf(&acc.ChatCompletion); err == nil {
			return reply, nil
		}
	}
	return chat.Reply{}, m.failure(err)
}

// failure wraps the error that ended a Complete, adding the API's message
// to an error response's (which names the status). A done context shows
// as the transport's error, which wraps the context's.
func (m *Model) failure(err error) error {
	var apiErr *sdk.Error
	if errors.As(err, &apiErr) && apiErr.Message != "" {
		return fmt.Errorf("openai %s: %w: %s", m.cfg.Model, err, apiErr.Message)
	}
	return fmt.Errorf("openai %s: %w", m.cfg.Model, err)
}

// replyOf turns the accumulated completion into a chat.Reply, or an error
// if the model never finished it.
func replyOf(c *sdk.ChatCompletion) (chat.Reply, error) {
	if len(c.Choices) == 0 || c.Choices[0].FinishReason == "" {
		return chat.Reply{}, errors.New("the stream ended before the model finished (no finish_reason)")
	}
	msg := c.Choices[0].Message
	reply := chat.Reply{Content: msg.Content}
	for i, tc := range msg.ToolCalls {
		if tc.ID == "" || tc.Function.Name == "" {
			return chat.Reply{}, fmt.Errorf("tool call %d has no id or no name", i)
		}
		reply.ToolCalls = append(reply.ToolCalls, gatehouse.ToolCall{
			ID:        tc.ID,
			Name:      tc.Function.Name,
			Arguments: json.RawMessage(tc.Function.Arguments),
		})
	}
	return reply, nil
}

// params maps req onto a streaming chat-completions request.
func (m *Model) params(req chat.ModelRequest) (sdk.ChatCompletionNewParams, error) {
	p := sdk.ChatCompletionNewParams{Model: shared.ChatModel(m.cfg.Model)}
	if m.cfg.Temperature != nil {
		p.Temperature = sdk.Float(*m.cfg.Temperature)
	}
	if m.cfg.MaxTokens > 0 {
		p.MaxCompletionTokens = sdk.Int(int64(m.cfg.MaxTokens))
	}
	if req.System != "" {
		p.Messages = append(p.Messages, sdk.SystemMessage(req.System))
	}
	for _, msg := range req.Messages {
		mp, err := messageParam(msg)
		if err != nil {
			return p, err
		}
		p.Messages = append(p.Messages, mp)
	}
	for _, t := range req.Tools {
		tp, err := toolParam(t)
		if err != nil {
			return p, err
		}
		p.Tools = append(p.Tools, tp)
	}
	return p, nil
}

func messageParam(msg gatehouse.Message) (sdk.ChatCompletionMessageParamUnion, error) {
	switch msg.Role {
	case gatehouse.RoleUser:
		return sdk.UserMessage(msg.Content), nil
	case gatehouse.RoleTool:
		if msg.ToolCallID == "" {
			return sdk.ChatCompletionMessageParamUnion{}, fmt.Errorf("openai: tool message %s answers no tool call", msg.ID)
		}
		return sdk.ToolMessage(msg.Content, msg.ToolCallID), nil
	case gatehouse.RoleAssistant:
		a := sdk.ChatCompletionAssistantMessageParam{}
		// The API takes an assistant message with tool calls and no text,
		// but not one with neither.
		if msg.Content != "" || len(msg.ToolCalls) == 0 {
			a.Content.OfString = sdk.String(msg.Content)
		}
		for _, c := range msg.ToolCalls {
			a.ToolCalls = append(a.ToolCalls, sdk.ChatCompletionMessageToolCallUnionParam{
				OfFunction: &sdk.ChatCompletionMessageFunctionToolCallParam{
					ID: c.ID,
					Function: sdk.ChatCompletionMessageFunctionToolCallFunctionParam{
						Name:      c.Name,
						Arguments: string(c.Arguments),
					},
				},
			})
		}
		return sdk.ChatCompletionMessageParamUnion{OfAssistant: &a}, nil
	default:
		return sdk.ChatCompletionMessageParamUnion{}, fmt.Errorf("openai: message %s has role %q, which a chat completion has not", msg.ID, msg.Role)
	}
}

func toolParam(t chat.ToolSpec) (sdk.ChatCompletionToolUnionParam, error) {
	schema := shared.FunctionParameters{"type": "object"}
	if len(bytes.TrimSpace(t.Parameters)) > 0 {
		// Each member stays the raw JSON it was: decoding into any would
		// round a large integer bound, and the SDK writes a json.Number as
		// a string.
		var members map[string]json.RawMessage
		if err := json.Unmarshal(t.Parameters, &members); err != nil || members == nil {
			return sdk.ChatCompletionToolUnionParam{}, fmt.Errorf("openai: tool %s: the parameters are not a JSON Schema object", t.Name)
		}
		schema = make(shared.FunctionParameters, len(members))
		for k, v := range members {
			schema[k] = v
		}
	}
	def := shared.FunctionDefinitionParam{Name: t.Name, Parameters: schema}
	if t.Description != "" {
		def.Description = sdk.String(t.Description)
	}
	return sdk.ChatCompletionFunctionTool(def), nil
}
