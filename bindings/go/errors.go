package poolproxy

/*
#include <poolproxy.h>
*/
import "C"

import "fmt"

// Error is a failure reported by the library: its PP_E… code and the message naming the cause.
type Error struct {
	Code    int    // negative PP_E… value
	Name    string // e.g. "PP_EBADVALUE"
	Message string // e.g. "option 'workers': expected an integer in 0..256, got 'x'"
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("poolproxy: %s", e.Name)
	}
	return fmt.Sprintf("poolproxy: %s (%s)", e.Message, e.Name)
}

// Is makes errors.Is(err, ErrBadValue) and the like match on the code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func newError(code int, message string) *Error {
	return &Error{Code: code, Name: C.GoString(C.pp_err_name(C.int(code))), Message: message}
}

func sentinel(code C.int) *Error {
	return &Error{Code: int(code), Name: C.GoString(C.pp_err_name(code))}
}

// Sentinels for errors.Is.
var (
	ErrInvalid   = sentinel(C.PP_EINVAL)     // an argument is invalid
	ErrNoMemory  = sentinel(C.PP_ENOMEM)     // out of memory
	ErrNoOption  = sentinel(C.PP_ENOOPT)     // no option by that name
	ErrBadValue  = sentinel(C.PP_EBADVALUE)  // an option's value is invalid
	ErrState     = sentinel(C.PP_ESTATE)     // not allowed in the proxy's current state
	ErrAddress   = sentinel(C.PP_EADDR)      // an address does not parse
	ErrBind      = sentinel(C.PP_EBIND)      // the listen address cannot be bound (e.g. in use)
	ErrNoBackend = sentinel(C.PP_ENOBACKEND) // no backend configured
	ErrIO        = sentinel(C.PP_EIO)        // a file cannot be read
	ErrSystem    = sentinel(C.PP_ESYS)       // a system resource (thread, loop) failed
	ErrTruncated = sentinel(C.PP_ETRUNC)     // a buffer was too small
	ErrNotFound  = sentinel(C.PP_ENOTFOUND)  // no such thing (a group, a field, a backend)
	ErrInternal  = sentinel(C.PP_EINTERNAL)  // a bug in the library
)
