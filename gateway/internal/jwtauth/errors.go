package jwtauth

import "net/http"

// Error codes, stable: clients and dashboards may branch on them.
const (
	CodeTokenMissing        = "token_missing"
	CodeTokenInvalid        = "token_invalid"
	CodeSignatureInvalid    = "signature_invalid"
	CodeTokenExpired        = "token_expired"
	CodeTokenNotYetValid    = "token_not_yet_valid"
	CodeIssuerInvalid       = "issuer_invalid"
	CodeAudienceInvalid     = "audience_invalid"
	CodeUnknownKey          = "unknown_key"
	CodeAlgorithmNotAllowed = "algorithm_not_allowed"
	CodeInsufficientScope   = "insufficient_scope"
)

// Error is why a token was refused. Code and Message are safe to show the
// client; the cause (for logs) never contains the token.
type Error struct {
	Code    string
	Status  int
	Message string
	cause   error
}

// Sentinel errors, one per code; errors.Is matches any *Error with the same
// code.
var (
	ErrTokenMissing        = &Error{Code: CodeTokenMissing, Status: http.StatusUnauthorized, Message: "a bearer token is required"}
	ErrTokenInvalid        = &Error{Code: CodeTokenInvalid, Status: http.StatusUnauthorized, Message: "the token is malformed or lacks a required claim"}
	ErrSignatureInvalid    = &Error{Code: CodeSignatureInvalid, Status: http.StatusUnauthorized, Message: "the token signature is invalid"}
	ErrTokenExpired        = &Error{Code: CodeTokenExpired, Status: http.StatusUnauthorized, Message: "the token has expired"}
	ErrTokenNotYetValid    = &Error{Code: CodeTokenNotYetValid, Status: http.StatusUnauthorized, Message: "the token is not valid yet"}
	ErrIssuerInvalid       = &Error{Code: CodeIssuerInvalid, Status: http.StatusUnauthorized, Message: "the token issuer is not accepted"}
	ErrAudienceInvalid     = &Error{Code: CodeAudienceInvalid, Status: http.StatusUnauthorized, Message: "the token audience is not accepted"}
	ErrUnknownKey          = &Error{Code: CodeUnknownKey, Status: http.StatusUnauthorized, Message: "no known key verifies the token"}
	ErrAlgorithmNotAllowed = &Error{Code: CodeAlgorithmNotAllowed, Status: http.StatusUnauthorized, Message: "the token algorithm is not accepted"}
	ErrInsufficientScope   = &Error{Code: CodeInsufficientScope, Status: http.StatusForbidden, Message: "the token grants no policy for this API"}
)

// allCodes lists every code, for metrics.
var allCodes = []string{
	CodeTokenMissing, CodeTokenInvalid, CodeSignatureInvalid, CodeTokenExpired,
	CodeTokenNotYetValid, CodeIssuerInvalid, CodeAudienceInvalid, CodeUnknownKey,
	CodeAlgorithmNotAllowed, CodeInsufficientScope,
}

// Errors returns the sentinel error of every code, so a caller can build
// its responses (status, code, message, WWW-Authenticate) once at start.
func Errors() []*Error {
	return []*Error{
		ErrTokenMissing, ErrTokenInvalid, ErrSignatureInvalid, ErrTokenExpired,
		ErrTokenNotYetValid, ErrIssuerInvalid, ErrAudienceInvalid, ErrUnknownKey,
		ErrAlgorithmNotAllowed, ErrInsufficientScope,
	}
}

func (e *Error) Error() string {
	if e.cause != nil {
		return "jwt " + e.Code + ": " + e.Message + ": " + e.cause.Error()
	}
	return "jwt " + e.Code + ": " + e.Message
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.cause }

// Is matches another *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// with returns a copy of e carrying cause for the logs.
func (e *Error) with(cause error) *Error {
	c := *e
	c.cause = cause
	return &c
}

// WWWAuthenticate is the value of the WWW-Authenticate header that goes
// with the error (RFC 6750 section 3).
func (e *Error) WWWAuthenticate() string {
	switch e.Code {
	case CodeTokenMissing:
		return `Bearer`
	case CodeInsufficientScope:
		return `Bearer error="insufficient_scope"`
	}
	return `Bearer error="invalid_token"`
}
