package client

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// Error codes only the HTTP API reports; the domain codes are
// gatehouse.Code* (CodeInvalid, CodeNotFound, …).
const (
	CodeUnauthorized         = "unauthorized"
	CodeForbidden            = "forbidden"
	CodePayloadTooLarge      = "payload_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeRateLimited          = "rate_limited"
)

// Error is an error the server answered, or a server that could not be
// reached (StatusCode 0, Code gatehouse.CodeUnavailable). Compare Code and
// Reason, never Message: the message is localized.
type Error struct {
	// StatusCode is the HTTP status; 0 when no response arrived.
	StatusCode int
	// Code is the stable error code, e.g. not_found, unauthorized, forbidden.
	Code string
	// Message is the server's message in the language Accept-Language picked.
	Message string
	// Reason is the decision reason behind a forbidden error.
	Reason gatehouse.Reason
	// Field names the request field or query parameter at fault, when the
	// error is about one (limit_value, tenant, …).
	Field string
	// Details are the problems of an invalid policy change, each naming its place.
	Details []string
	// RequestID is the server's X-Request-ID of the request, for its logs.
	RequestID string
	// Err is the transport error when no response arrived.
	Err error
}

// Error describes e.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("gatehouse: ")
	if e.StatusCode != 0 {
		b.WriteString(http.StatusText(e.StatusCode))
		b.WriteString(" (" + e.Code + ")")
	} else {
		b.WriteString(e.Code)
	}
	if e.Reason != "" {
		b.WriteString(" reason " + string(e.Reason))
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the transport error, if any.
func (e *Error) Unwrap() error { return e.Err }

// sentinels maps the stable codes that have a domain sentinel error.
var sentinels = map[string]error{
	gatehouse.CodeInvalid:           gatehouse.ErrInvalid,
	gatehouse.CodeNotFound:          gatehouse.ErrNotFound,
	gatehouse.CodeConflict:          gatehouse.ErrConflict,
	gatehouse.CodeLastSuperuser:     gatehouse.ErrLastSuperuser,
	gatehouse.CodeUnavailable:       gatehouse.ErrUnavailable,
	gatehouse.CodeCorrupt:           gatehouse.ErrCorrupt,
	gatehouse.CodeSchemaTooNew:      gatehouse.ErrSchemaTooNew,
	gatehouse.CodeNotEmpty:          gatehouse.ErrNotEmpty,
	gatehouse.CodeIllegalTransition: gatehouse.ErrIllegalTransition,
	gatehouse.CodeActionExpired:     gatehouse.ErrActionExpired,
	gatehouse.CodeNotApprover:       gatehouse.ErrNotApprover,
}

// Is reports whether target is the gatehouse sentinel error of e's code, so
// errors.Is(err, gatehouse.ErrNotFound) holds for a 404 not_found.
func (e *Error) Is(target error) bool {
	s, ok := sentinels[e.Code]
	return ok && s == target
}

// errorBody is the JSON of every error response.
type errorBody struct {
	Error struct {
		Code    string           `json:"code"`
		Message string           `json:"message"`
		Reason  gatehouse.Reason `json:"reason"`
		Field   string           `json:"field"`
		Details []string         `json:"details"`
	} `json:"error"`
}

// readError reads a non-2xx response. A body that is not Gatehouse's error
// JSON (a proxy's page) gets the code its status implies.
func readError(res *http.Response) *Error {
	e := &Error{StatusCode: res.StatusCode, RequestID: res.Header.Get("X-Request-ID")}
	var body errorBody
	raw, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	if json.Unmarshal(raw, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message, e.Reason, e.Field, e.Details = body.Error.Code, body.Error.Message, body.Error.Reason, body.Error.Field, body.Error.Details
		return e
	}
	e.Code = codeOfStatus(res.StatusCode)
	e.Message = http.StatusText(res.StatusCode)
	return e
}

// codeOfStatus is the stable code for a status without an error body.
func codeOfStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return gatehouse.CodeInvalid
	case http.StatusUnauthorized:
		return CodeUnauthorized
	case http.StatusForbidden:
		return CodeForbidden
	case http.StatusNotFound:
		return gatehouse.CodeNotFound
	case http.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	case http.StatusConflict:
		return gatehouse.CodeConflict
	case http.StatusRequestEntityTooLarge:
		return CodePayloadTooLarge
	case http.StatusUnsupportedMediaType:
		return CodeUnsupportedMediaType
	case http.StatusTooManyRequests:
		return CodeRateLimited
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return gatehouse.CodeUnavailable
	}
	return gatehouse.CodeInternal
}

// IsCode reports whether err is an *Error with code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}
