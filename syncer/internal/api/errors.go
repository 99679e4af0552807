package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/validation"
)

// Stable error codes of the admin API.
const (
	codeInvalid      = "invalid_request"
	codeUnauthorized = "unauthorized"
	codeForbidden    = "forbidden"
	codeNotFound     = "not_found"
	codeMethod       = "method_not_allowed"
	codeConflict     = "conflict"
	codePrecondition = "precondition_failed"
	codeInternal     = "internal"
	codeUnavailable  = "unavailable"
)

// Error is an error with its HTTP status and stable code. Handlers return
// it (or a store sentinel, or validation.Errors); writeError maps every error
// to a response in one place.
type Error struct {
	Status  int
	Code    string
	Message string
	Details validation.Errors
}

func (e *Error) Error() string { return e.Message }

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalid(errs validation.Errors) *Error {
	msg := fmt.Sprintf("%d problem(s) with the request: %s", len(errs), errs.Error())
	if len(errs) == 1 {
		msg = "invalid request: " + errs.Error()
	}
	return &Error{Status: http.StatusBadRequest, Code: codeInvalid, Message: msg, Details: errs}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Details validation.Errors `json:"details,omitempty"`
}

// toError maps any handler error to an *Error.
func toError(err error) *Error {
	var e *Error
	var verrs validation.Errors
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &verrs):
		return invalid(verrs)
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, codeNotFound, "%v", err)
	case errors.Is(err, store.ErrExists):
		return errorf(http.StatusConflict, codeConflict, "%v", err)
	case errors.Is(err, store.ErrRouteTaken):
		// A clash the pre-write check could not see (a concurrent write).
		return invalid(validation.Errors{{Field: "listen_path", Message: err.Error()}})
	case errors.Is(err, store.ErrDanglingRef):
		return invalid(validation.Errors{{Message: err.Error()}})
	case errors.Is(err, store.ErrInUse):
		return errorf(http.StatusConflict, codeConflict, "%v", err)
	case errors.Is(err, store.ErrPrecondition):
		return errorf(http.StatusPreconditionFailed, codePrecondition, "%v (If-Match does not match the current ETag)", err)
	}
	return &Error{Status: http.StatusInternalServerError, Code: codeInternal, Message: "internal error; see the syncer log"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *Error) {
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
	}
	writeJSON(w, e.Status, errorBody{Error: errorDetail{Code: e.Code, Message: e.Message, Details: e.Details}})
}
