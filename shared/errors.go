package shared

import (
	"errors"
	"fmt"
	"strconv"
)

// Code classifies an error so every layer can map it to a status in one place.
type Code string

// Error codes. Each maps to exactly one HTTP status through HTTPStatus.
const (
	EINVALID      Code = "invalid"
	ENOTFOUND     Code = "not_found"
	ECONFLICT     Code = "conflict"
	EUNAUTHORIZED Code = "unauthorized"
	EFORBIDDEN    Code = "forbidden"
	ERATELIMITED  Code = "rate_limited"
	EUNAVAILABLE  Code = "unavailable"
	EINTERNAL     Code = "internal"
	// ETOOLARGE is an invalid request whose body exceeds a limit.
	ETOOLARGE Code = "too_large"
	// EUNSUPPORTED is a request in a media type the endpoint does not take.
	EUNSUPPORTED Code = "unsupported_media_type"
)

// Error is edgepoll's error: a code, a message safe to show to a client, and
// an optional wrapped cause that is never shown.
type Error struct {
	Code    Code
	Message string
	Err     error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return string(e.Code) + ": " + e.Message + ": " + e.Err.Error()
	}
	return string(e.Code) + ": " + e.Message
}

// Unwrap returns the wrapped cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with the given code and message wrapping cause.
func Wrap(code Code, cause error, message string) *Error {
	return &Error{Code: code, Message: message, Err: cause}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err: the message of its
// first *Error, or "internal error" so internal details never leak.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// HTTPStatus is the one mapping from error codes to HTTP statuses.
func HTTPStatus(code Code) int {
	switch code {
	case "":
		return 200
	case EINVALID:
		return 400
	case EUNAUTHORIZED:
		return 401
	case EFORBIDDEN:
		return 403
	case ENOTFOUND:
		return 404
	case ECONFLICT:
		return 409
	case ETOOLARGE:
		return 413
	case EUNSUPPORTED:
		return 415
	case ERATELIMITED:
		return 429
	case EUNAVAILABLE:
		return 503
	default:
		return 500
	}
}

// AppendErrorJSON appends the JSON error body {"error":{"code","message"}} for
// err. It is hand-written so the edge needs no reflection to report errors.
func AppendErrorJSON(dst []byte, err error) []byte {
	code := ErrorCode(err)
	dst = append(dst, `{"error":{"code":`...)
	dst = AppendJSONString(dst, string(code))
	dst = append(dst, `,"message":`...)
	dst = AppendJSONString(dst, ErrorMessage(err))
	return append(dst, "}}"...)
}

// AppendJSONString appends s as a JSON string literal, escaping as RFC 8259
// requires (and <, >, & so the output is safe inside HTML).
func AppendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// AppendJSONUint appends n as a JSON number.
func AppendJSONUint(dst []byte, n uint64) []byte { return strconv.AppendUint(dst, n, 10) }
