package poolproxy

/*
#include <poolproxy.h>
#include <stdint.h>
#include <stdlib.h>
*/
import "C"

import (
	"fmt"
	"os"
	"runtime/cgo"
	"sync"
	"unsafe"
)

// Exchange is what a hook steers: a request (OnRequest), a response (OnResponse) or a tcp
// connection (OnConnect). It is valid only while the hook runs, and only from the hook's own
// goroutine: a method called later, or from another goroutine, returns ErrState. Hooks run on the proxy's worker threads and must not block; a lookup that
// takes time calls Pause and resumes from any goroutine.
type Exchange struct {
	// The C handle while the hook runs, then nil. mu is held across every call into C, so
	// that the hook's return (which clears ex) never overlaps a call that uses it; a call
	// from a goroutine other than the hook's gets ErrState from the library (wrong thread).
	mu      sync.Mutex
	ex      *C.pp_exchange
	gate    *resumeGate
	Method  string // the request's (request and response hooks)
	Target  string // as the client sent it (request hook), as sent upstream (response hook)
	Client  string // the client's "ip:port" (request and connect hooks)
	Status  int    // the response's (response hook)
	Backend int    // the backend that answered (response hook)
	Group   string // the group a route picked (request hook; "" = the default group)
	// UpstreamTarget is the target as it will go upstream (a route's strip_prefix, an earlier
	// SetTarget); Host the Host as the client sent it (the head's is as it goes upstream).
	UpstreamTarget string
	Host           string
	Resumes        int // request hook: 0 at first, n when called again after the n-th resume
	Worker         int
	token          uint64
}

// Token is, in a request hook called again after a resume, the token of the Resumer that
// resumed it (Resumer.Token); else 0.
func (e *Exchange) Token() uint64 { return e.token }

// Field is one header field.
type Field struct{ Name, Value string }

// with runs f with the live handle, under mu; ErrState once the hook has returned.
func (e *Exchange) with(f func(*C.pp_exchange) error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ex == nil {
		return &Error{Code: int(C.PP_ESTATE), Name: "PP_ESTATE", Message: "the exchange is valid only during its hook"}
	}
	return f(e.ex)
}

// Field returns the first value of the field named name (case-insensitively).
func (e *Exchange) Field(name string) (string, bool) {
	var out string
	found := false
	e.with(func(ex *C.pp_exchange) error {
		cn := C.CString(name)
		defer C.free(unsafe.Pointer(cn))
		if v := C.pp_exchange_find_field(ex, cn); v != nil {
			out, found = C.GoString(v), true
		}
		return nil
	})
	return out, found
}

// Fields returns the head's fields in order (the request's, or the response's).
func (e *Exchange) Fields() []Field {
	var out []Field
	e.with(func(ex *C.pp_exchange) error {
		n := int(C.pp_exchange_field_count(ex))
		for i := 0; i < n; i++ {
			var name, value *C.char
			if C.pp_exchange_field(ex, C.size_t(i), &name, &value) == 0 {
				out = append(out, Field{C.GoString(name), C.GoString(value)})
			}
		}
		return nil
	})
	return out
}

func (e *Exchange) fieldCall(name, value string, f func(*C.pp_exchange, *C.char, *C.char) C.int) error {
	return e.with(func(ex *C.pp_exchange) error {
		cn, cv := C.CString(name), C.CString(value)
		defer C.free(unsafe.Pointer(cn))
		defer C.free(unsafe.Pointer(cv))
		return call(func() C.int { return f(ex, cn, cv) })
	})
}

// SetField sets a field (the first of that name changed, the rest removed, or added). The
// framing and hop-by-hop fields are refused (ErrInvalid).
func (e *Exchange) SetField(name, value string) error {
	return e.fieldCall(name, value, func(ex *C.pp_exchange, n, v *C.char) C.int { return C.pp_exchange_set_field(ex, n, v) })
}

// AddField adds a field after the others.
func (e *Exchange) AddField(name, value string) error {
	return e.fieldCall(name, value, func(ex *C.pp_exchange, n, v *C.char) C.int { return C.pp_exchange_add_field(ex, n, v) })
}

// RemoveField removes every field named name (ErrNotFound when there was none).
func (e *Exchange) RemoveField(name string) error {
	return e.fieldCall(name, "", func(ex *C.pp_exchange, n, _ *C.char) C.int { return C.pp_exchange_remove_field(ex, n) })
}

// SetTarget sets the target sent upstream (request hook).
func (e *Exchange) SetTarget(target string) error {
	return e.fieldCall(target, "", func(ex *C.pp_exchange, t, _ *C.char) C.int { return C.pp_exchange_set_target(ex, t) })
}

// SetGroup sends the request (or tcp connection) to a backend group; an unknown one answers
// 500 (closes the connection in tcp mode) and returns ErrNotFound.
func (e *Exchange) SetGroup(group string) error {
	return e.fieldCall(group, "", func(ex *C.pp_exchange, g, _ *C.char) C.int { return C.pp_exchange_set_group(ex, g) })
}

// SetBackend sends the request to this backend only.
func (e *Exchange) SetBackend(id int) error {
	return e.with(func(ex *C.pp_exchange) error {
		return call(func() C.int { return C.pp_exchange_set_backend(ex, C.int(id)) })
	})
}

// Respond answers the client now (request hook): no backend is asked; the connection closes
// after the answer.
func (e *Exchange) Respond(status int, fields []Field, body []byte) error {
	return e.with(func(ex *C.pp_exchange) error { return respond(ex, status, fields, body) })
}

func respond(ex *C.pp_exchange, status int, fields []Field, body []byte) error {
	arr := (*[1 << 20]*C.char)(C.malloc(C.size_t(2*len(fields)+1) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	for i, f := range fields {
		arr[2*i], arr[2*i+1] = C.CString(f.Name), C.CString(f.Value)
	}
	arr[2*len(fields)] = nil
	defer func() {
		for i := 0; i < 2*len(fields); i++ {
			C.free(unsafe.Pointer(arr[i]))
		}
		C.free(unsafe.Pointer(arr))
	}()
	var cb *C.char
	if len(body) > 0 {
		cb = (*C.char)(C.CBytes(body))
		defer C.free(unsafe.Pointer(cb))
	}
	return call(func() C.int {
		return C.pp_exchange_respond(ex, C.int(status), (**C.char)(unsafe.Pointer(arr)), cb, C.size_t(len(body)))
	})
}

// resumeGate is the C proxy as Resumers reach it: nil once the Proxy is closed. It is not
// the Proxy itself, which a callback must not keep reachable (its finalizer would never run).
type resumeGate struct {
	mu sync.RWMutex
	c  *C.pp_proxy
}

// Resumer resumes a paused exchange, from any goroutine, once.
type Resumer struct {
	gate  *resumeGate
	token uint64
}

// Token identifies the pause (the request hook sees it again as its Exchange's resume).
func (r *Resumer) Token() uint64 { return r.token }

// Resume lets the exchange go on: its request hook is called again on its worker, with
// Resumes one higher. ErrState when it was resumed already, or it ended (the client left, the
// response_timeout answered it, the proxy was closed).
func (r *Resumer) Resume() error {
	r.gate.mu.RLock()
	defer r.gate.mu.RUnlock()
	if r.gate.c == nil {
		return &Error{Code: int(C.PP_ESTATE), Name: "PP_ESTATE", Message: "proxy is closed"}
	}
	return call(func() C.int { return C.pp_exchange_resume(r.gate.c, C.uint64_t(r.token)) })
}

// Pause makes the exchange wait when the hook returns, until the Resumer resumes it or
// response_timeout passes (504).
func (e *Exchange) Pause() (*Resumer, error) {
	var t C.uint64_t
	err := e.with(func(ex *C.pp_exchange) error { return call(func() C.int { return C.pp_exchange_pause(ex, &t) }) })
	if err != nil {
		return nil, err
	}
	return &Resumer{gate: e.gate, token: uint64(t)}, nil
}

// OnRequest sets the request hook (http mode). Returning an error, or panicking, answers the
// client 500; the worker goes on serving.
func (c *Config) OnRequest(f func(*Exchange) error) { c.request = f }

// OnResponse sets the response hook (http mode): it may change the response's fields.
// Returning an error, or panicking, answers the client 500.
func (c *Config) OnResponse(f func(*Exchange) error) { c.response = f }

// OnConnect sets the connect hook (tcp mode): it may pick the group (SetGroup); returning an
// error, or panicking, closes the connection.
func (c *Config) OnConnect(f func(*Exchange) error) { c.connect = f }

// runHook calls a hook, turning an error or a panic into the C side's failure.
func runHook(kind string, f func(*Exchange) error, e *Exchange) (rc C.int) {
	defer func() {
		e.mu.Lock()
		e.ex = nil // valid only during the call
		e.mu.Unlock()
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "poolproxy: %s hook panicked (recovered, answered as failed): %v\n", kind, r)
			rc = -1
		}
	}()
	if err := f(e); err != nil {
		return -1
	}
	return 0
}

//export ppGoRequest
func ppGoRequest(handle C.uintptr_t, ex *C.pp_exchange, info *C.pp_request_info) C.int {
	cb := cgo.Handle(handle).Value().(*callbacks)
	e := &Exchange{ex: ex, gate: cb.gate, Method: C.GoString(info.method), Target: C.GoString(info.target),
		Client: C.GoString(info.client), Group: C.GoString(info.group), Resumes: int(info.resumes),
		Worker: int(info.worker), token: uint64(info.token), UpstreamTarget: C.GoString(info.upstream_target),
		Host: C.GoString(info.host)}
	return runHook("request", cb.request, e)
}

//export ppGoResponse
func ppGoResponse(handle C.uintptr_t, ex *C.pp_exchange, info *C.pp_response_info) C.int {
	cb := cgo.Handle(handle).Value().(*callbacks)
	e := &Exchange{ex: ex, gate: cb.gate, Method: C.GoString(info.method), Target: C.GoString(info.target),
		Status: int(info.status), Backend: int(info.backend_id)}
	return runHook("response", cb.response, e)
}

//export ppGoConnect
func ppGoConnect(handle C.uintptr_t, ex *C.pp_exchange, info *C.pp_connect_info) C.int {
	cb := cgo.Handle(handle).Value().(*callbacks)
	e := &Exchange{ex: ex, gate: cb.gate, Client: C.GoString(info.client), Worker: int(info.worker)}
	return runHook("connect", cb.connect, e)
}
