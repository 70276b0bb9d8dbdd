package http

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
)

// Error codes that only the HTTP surface reports; the domain codes are
// gatehouse.Code*.
const (
	CodeUnauthorized         = "unauthorized"
	CodeForbidden            = gatehouse.CodeForbidden
	CodePayloadTooLarge      = "payload_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeRateLimited          = "rate_limited"
)

// statusByCode is the one table from stable error codes to HTTP statuses.
// Handlers return errors; only writeError picks a status, from here.
var statusByCode = map[string]int{
	gatehouse.CodeInvalid:           http.StatusBadRequest,
	gatehouse.CodeNotFound:          http.StatusNotFound,
	gatehouse.CodeConflict:          http.StatusConflict,
	gatehouse.CodeLastSuperuser:     http.StatusConflict,
	gatehouse.CodeNotEmpty:          http.StatusConflict,
	gatehouse.CodeUnavailable:       http.StatusServiceUnavailable,
	gatehouse.CodeCorrupt:           http.StatusInternalServerError,
	gatehouse.CodeSchemaTooNew:      http.StatusInternalServerError,
	gatehouse.CodeInternal:          http.StatusInternalServerError,
	gatehouse.CodeIllegalTransition: http.StatusConflict,
	gatehouse.CodeActionExpired:     http.StatusConflict,
	gatehouse.CodeNotApprover:       http.StatusForbidden,
	gatehouse.CodeAskForbidden:      http.StatusForbidden,
	CodeUnauthorized:                http.StatusUnauthorized,
	CodeForbidden:                   http.StatusForbidden,
	CodePayloadTooLarge:             http.StatusRequestEntityTooLarge,
	CodeUnsupportedMediaType:        http.StatusUnsupportedMediaType,
	CodeMethodNotAllowed:            http.StatusMethodNotAllowed,
	CodeRateLimited:                 http.StatusTooManyRequests,
}

// ErrorCodes returns every code the error table maps, for documentation and
// tests.
func ErrorCodes() []string {
	codes := make([]string, 0, len(statusByCode))
	for c := range statusByCode {
		codes = append(codes, c)
	}
	return codes
}

// StatusCode returns the HTTP status for a stable error code; 500 for a code
// the table does not know.
func StatusCode(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Error is an error a client sees: a stable code, a catalog message id with
// its template data (localized per request), and the cause, which goes to
// the log only.
type Error struct {
	Code string
	// Message is a catalog message id; empty means "error." + Code.
	Message string
	Data    map[string]any
	// Reason is the decision reason behind a forbidden error.
	Reason gatehouse.Reason
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter time.Duration
	Err        error
}

// Error describes e for the log.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Err.Error()
	}
	return e.Code
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// messageID is the catalog id of e's message.
func (e *Error) messageID() string {
	if e.Message != "" {
		return e.Message
	}
	return "error." + e.Code
}

// wrap records err as e's cause and returns e.
func (e *Error) wrap(err error) *Error {
	e.Err = err
	return e
}

// invalid is a 400 with a specific message.
func invalid(message string, data map[string]any) *Error {
	return &Error{Code: gatehouse.CodeInvalid, Message: message, Data: data}
}

// errorBody is the JSON of every error response.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string           `json:"code"`
	Message string           `json:"message"`
	Reason  gatehouse.Reason `json:"reason,omitempty"`
	// Field names the request field or query parameter at fault, when the
	// error is about one.
	Field string `json:"field,omitempty"`
	// Details are the problems of an invalid policy, each naming its place.
	Details []string `json:"details,omitempty"`
}

// writeError answers r with err: the status from the table, the stable code
// and the message in the caller's language. The cause is logged, never sent.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: gatehouse.ErrorCode(err), Err: err}
		var fe *gatehouse.ForbiddenError
		if errors.As(err, &fe) {
			e.Reason = fe.Reason
		}
	}
	status := StatusCode(e.Code)
	msg := e.messageID()
	level := slog.LevelDebug
	if status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	s.cfg.Logger.Log(r.Context(), level, "request failed",
		"request_id", requestID(r.Context()), "code", e.Code, "status", status, "err", err)
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	if e.Code == CodeUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
	}
	detail := errorDetail{Code: e.Code, Message: s.text(language(r.Context()), msg, e.Data), Reason: e.Reason}
	detail.Field, _ = e.Data["Field"].(string)
	var perr *policy.Error
	if errors.As(err, &perr) {
		for _, p := range perr.Problems {
			detail.Details = append(detail.Details, p.String())
		}
	}
	s.writeJSON(w, r, status, errorBody{Error: detail})
}

// writeJSON writes v with status; an encoding failure can only be logged,
// as the status is already sent.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.cfg.Logger.Debug("write response", "request_id", requestID(r.Context()), "err", err)
	}
}
