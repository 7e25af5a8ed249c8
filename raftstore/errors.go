package raftstore

import "fmt"

// Result codes. The state machine refuses a command with one of these;
// it knows nothing of the transport. The HTTP layer maps each to a status
// (httpStatus), and the client maps a response back to the same code, so
// errors.Is works on either side of the wire.
const (
	CodeBadRequest      = "bad_request"      // the request is malformed or out of range
	CodeNotFound        = "not_found"        // no such policy, version or member
	CodeInvalidPolicy   = "invalid_policy"   // the checker found errors in a policy text
	CodeVersionConflict = "version_conflict" // compare-and-set on a policy's latest version failed
	CodeNoPrevious      = "no_previous"      // a rollback with nothing to roll back to
	CodeLeaseHeld       = "lease_held"       // another holder has the lease
	CodeLockDelay       = "lock_delay"       // a VM lease expired unreleased and is locked a while
	CodeStaleToken      = "stale_token"      // the holder or token no longer matches the lease
	CodeTooLarge        = "too_large"        // a body or policy text over its limit
	CodeNoQuorum        = "no_quorum"        // no leader could serve the request
	CodeUnknownOutcome  = "unknown_outcome"  // leadership was lost before the write was known to commit
	CodeInternal        = "internal"         // a bug or an unexpected failure
	CodeConflict        = "conflict"         // the request contradicts the state (a member id with other addresses)
	CodeQuota           = "quota"            // the store holds as many of these as it may
	CodeUnauthenticated = "unauthenticated"  // no token, or one the store does not know
	CodeForbidden       = "forbidden"        // the caller's role or identity may not do this

	CodeIdempotencyConflict = "idempotency_conflict" // a request id first used for another request
)

// Error is a refusal with a machine-readable code and the field it
// concerns. Business refusals (a held lease) are Errors too: they are
// results of a command, never panics. Status is the HTTP status of the
// response that carried the error: the HTTP layer and the client set it,
// the state machine never does, so none is ever saved in a snapshot.
type Error struct {
	Status  int    `json:"status,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	Details any    `json:"details,omitempty"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("raftstore: %s (%s): %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("raftstore: %s: %s", e.Code, e.Message)
}

// Is lets errors.Is match on the code: errors.Is(err, ErrLeaseHeld).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == ""
}

// Sentinels for errors.Is; the codes travel in the JSON error.
var (
	ErrBadRequest      = &Error{Code: CodeBadRequest}
	ErrNotFound        = &Error{Code: CodeNotFound}
	ErrInvalidPolicy   = &Error{Code: CodeInvalidPolicy}
	ErrVersionConflict = &Error{Code: CodeVersionConflict}
	ErrLeaseHeld       = &Error{Code: CodeLeaseHeld}
	ErrUnauthenticated = &Error{Code: CodeUnauthenticated}
	ErrForbidden       = &Error{Code: CodeForbidden}
	ErrLockDelay       = &Error{Code: CodeLockDelay}
	ErrStaleToken      = &Error{Code: CodeStaleToken}
	ErrTooLarge        = &Error{Code: CodeTooLarge}
	ErrNoQuorum        = &Error{Code: CodeNoQuorum}
	ErrInternal        = &Error{Code: CodeInternal}
	ErrConflict        = &Error{Code: CodeConflict}
)

func errf(code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

func badRequest(field, format string, args ...any) *Error {
	return errf(CodeBadRequest, field, format, args...)
}
