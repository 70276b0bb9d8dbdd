package chat

import (
	"context"
	"encoding/json"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Executor runs the tools a model calls, once the one door allowed the
// call. Package chat/tools has the demo tools and an HTTP executor.
type Executor interface {
	// Tools are the tools this executor runs, as the model sees them.
	Tools() []ToolSpec
	// Execute runs one call and returns its result, the text the model
	// reads. An error is a failure of the tool (recorded as failed).
	Execute(ctx context.Context, call Call) (string, error)
}

// Call is one tool call to execute.
type Call struct {
	Tool      string          `json:"tool"`
	Arguments json.RawMessage `json:"arguments"`
	Tenant    string          `json:"tenant"`
	Subject   string          `json:"subject"`
	// ConversationID is the thread; ActionID the agent action the call
	// carries out, if any.
	ConversationID string `json:"conversation_id"`
	ActionID       string `json:"action_id,omitempty"`
}

// Event is what the engine tells a client, as the WebSocket sends it:
// {"event_type": …, "data": …}.
type Event struct {
	Type string `json:"event_type"`
	Data any    `json:"data"`
}

// Event types.
const (
	// EventCapabilities: Capabilities, on connect and whenever they change.
	EventCapabilities = "capabilities"
	// EventPermissionError: an operation (or the chat itself) is denied.
	EventPermissionError = "permission_error"
	// EventError: a frame or an operation failed for another reason.
	EventError = "error"
	// EventThreads, EventThread, EventThreadCreated, EventThreadRenamed,
	// EventThreadDeleted answer the thread commands.
	EventThreads       = "threads"
	EventThread        = "thread"
	EventThreadCreated = "thread_created"
	EventThreadRenamed = "thread_renamed"
	EventThreadDeleted = "thread_deleted"
	// EventMessage: a message was stored in a thread the client watches.
	EventMessage = "message"
	// EventAttachment: an upload was stored; EventAttachmentPreview
	// answers open_attachment_preview.
	EventAttachment        = "attachment"
	EventAttachmentPreview = "attachment_preview"
	// EventToken: a piece of the assistant's answer as it streams.
	EventToken = "token"
	// Agent status (seed 002).
	EventAgentStarted   = "agent.started"
	EventAgentRunning   = "agent.running"
	EventAgentWaiting   = "agent.waiting"
	EventAgentCompleted = "agent.completed"
	EventAgentFailed    = "agent.failed"
	// EventToolError: the one door refused a tool call, or the tool
	// failed (seed 000's chat_tool_error).
	EventToolError = "chat_tool_error"
	// EventToolResult: a tool call ran.
	EventToolResult = "tool_result"
	// EventConfirmationRequired: an agent action waits for a human.
	EventConfirmationRequired = "confirmation_required"
	// EventConfirmation: an action was confirmed or cancelled.
	EventConfirmation = "confirmation"
	// EventPong answers ping.
	EventPong = "pong"
)

// ErrorData is the data of permission_error and error events.
type ErrorData struct {
	Error      string `json:"error"`
	Reason     string `json:"reason"`
	Permission string `json:"permission,omitempty"`
	// Command and RequestID name the command that failed.
	Command   string `json:"command,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	ThreadID  string `json:"thread_id,omitempty"`
}

// StatusData is the data of the agent status events.
type StatusData struct {
	ThreadID string `json:"thread_id"`
	Status   string `json:"status"`
	Error    string `json:"error,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// TokenData is the data of a token event.
type TokenData struct {
	ThreadID string `json:"thread_id"`
	Text     string `json:"text"`
}

// ToolErrorData is the data of a chat_tool_error event.
type ToolErrorData struct {
	ToolName       string `json:"tool_name"`
	ToolCallID     string `json:"tool_call_id"`
	Error          string `json:"error"`
	Reason         string `json:"reason"`
	Permission     string `json:"permission,omitempty"`
	ConversationID string `json:"conversation_id"`
	ActionID       string `json:"action_id,omitempty"`
}

// ToolResultData is the data of a tool_result event.
type ToolResultData struct {
	ToolName       string `json:"tool_name"`
	ToolCallID     string `json:"tool_call_id"`
	ConversationID string `json:"conversation_id"`
	ActionID       string `json:"action_id,omitempty"`
}

// ConfirmationData is the data of confirmation_required and confirmation
// events.
type ConfirmationData struct {
	ActionID       string                 `json:"action_id"`
	Action         string                 `json:"action,omitempty"`
	ToolName       string                 `json:"tool_name,omitempty"`
	Summary        string                 `json:"summary,omitempty"`
	Status         gatehouse.ActionStatus `json:"status,omitempty"`
	ConversationID string                 `json:"conversation_id"`
	ExpiresAt      time.Time              `json:"expires_at,omitzero"`
}

// ThreadData is the data of thread events: the thread and, for thread,
// its messages.
type ThreadData struct {
	Thread    gatehouse.Thread    `json:"thread"`
	Messages  []gatehouse.Message `json:"messages,omitempty"`
	RequestID string              `json:"request_id,omitempty"`
}

// ThreadsData is the data of a threads event.
type ThreadsData struct {
	Threads   []gatehouse.Thread `json:"threads"`
	RequestID string             `json:"request_id,omitempty"`
}

// MessageData is the data of a message event.
type MessageData struct {
	Message gatehouse.Message `json:"message"`
}

// AttachmentData is the data of attachment and attachment_preview events;
// Text is the preview of a text-like attachment.
type AttachmentData struct {
	Attachment gatehouse.Attachment `json:"attachment"`
	Text       string               `json:"text,omitempty"`
	RequestID  string               `json:"request_id,omitempty"`
}
