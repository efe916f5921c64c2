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
	"sync/atomic"
	"unsafe"
)

// Exchange is what a hook steers: a request (OnRequest), a response (OnResponse) or a tcp
// connection (OnConnect). It is valid only while the hook runs: a method called later
// returns ErrState. Hooks run on the proxy's worker threads and must not block; a lookup that
// takes time calls Pause and resumes from any goroutine.
type Exchange struct {
	ex      unsafe.Pointer // *C.pp_exchange while the hook runs, then nil (atomic: a kept Exchange may be used from anywhere)
	proxy   *Proxy
	Method  string // the request's (request and response hooks)
	Target  string // as the client sent it (request hook), as sent upstream (response hook)
	Client  string // the client's "ip:port" (request and connect hooks)
	Status  int    // the response's (response hook)
	Backend int    // the backend that answered (response hook)
	Group   string // the group a route picked (request hook; "" = the default group)
	Resumes int    // request hook: 0 at first, n when called again after the n-th resume
	Worker  int
	token   uint64
}

// Token is, in a request hook called again after a resume, the token of the Resumer that
// resumed it (Resumer.Token); else 0.
func (e *Exchange) Token() uint64 { return e.token }

// Field is one header field.
type Field struct{ Name, Value string }

func (e *Exchange) live() (*C.pp_exchange, error) {
	ex := (*C.pp_exchange)(atomic.LoadPointer(&e.ex))
	if ex == nil {
		return nil, &Error{Code: int(C.PP_ESTATE), Name: "PP_ESTATE", Message: "the exchange is valid only during its hook"}
	}
	return ex, nil
}

// Field returns the first value of the field named name (case-insensitively).
func (e *Exchange) Field(name string) (string, bool) {
	ex, err := e.live()
	if err != nil {
		return "", false
	}
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	v := C.pp_exchange_find_field(ex, cn)
	if v == nil {
		return "", false
	}
	return C.GoString(v), true
}

// Fields returns the head's fields in order (the request's, or the response's).
func (e *Exchange) Fields() []Field {
	ex, err := e.live()
	if err != nil {
		return nil
	}
	n := int(C.pp_exchange_field_count(ex))
	out := make([]Field, 0, n)
	for i := 0; i < n; i++ {
		var name, value *C.char
		if C.pp_exchange_field(ex, C.size_t(i), &name, &value) == 0 {
			out = append(out, Field{C.GoString(name), C.GoString(value)})
		}
	}
	return out
}

func (e *Exchange) fieldCall(name, value string, f func(*C.pp_exchange, *C.char, *C.char) C.int) error {
	ex, err := e.live()
	if err != nil {
		return err
	}
	cn, cv := C.CString(name), C.CString(value)
	defer C.free(unsafe.Pointer(cn))
	defer C.free(unsafe.Pointer(cv))
	return call(func() C.int { return f(ex, cn, cv) })
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
	ex, err := e.live()
	if err != nil {
		return err
	}
	return call(func() C.int { return C.pp_exchange_set_backend(ex, C.int(id)) })
}

// Respond answers the client now (request hook): no backend is asked; the connection closes
// after the answer.
func (e *Exchange) Respond(status int, fields []Field, body []byte) error {
	ex, err := e.live()
	if err != nil {
		return err
	}
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

// Resumer resumes a paused exchange, from any goroutine, once.
type Resumer struct {
	proxy *Proxy
	token uint64
}

// Token identifies the pause (the request hook sees it again as its Exchange's resume).
func (r *Resumer) Token() uint64 { return r.token }

// Resume lets the exchange go on: its request hook is called again on its worker, with
// Resumes one higher. ErrState when it was resumed already, or it ended (the client left, the
// response_timeout answered it, the proxy was closed).
func (r *Resumer) Resume() error {
	r.proxy.mu.RLock()
	defer r.proxy.mu.RUnlock()
	c, err := r.proxy.live()
	if err != nil {
		return err
	}
	return call(func() C.int { return C.pp_exchange_resume(c, C.uint64_t(r.token)) })
}

// Pause makes the exchange wait when the hook returns, until the Resumer resumes it or
// response_timeout passes (504).
func (e *Exchange) Pause() (*Resumer, error) {
	ex, err := e.live()
	if err != nil {
		return nil, err
	}
	var t C.uint64_t
	if err := call(func() C.int { return C.pp_exchange_pause(ex, &t) }); err != nil {
		return nil, err
	}
	return &Resumer{proxy: e.proxy, token: uint64(t)}, nil
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
		atomic.StorePointer(&e.ex, nil) // valid only during the call
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
	e := &Exchange{ex: unsafe.Pointer(ex), proxy: cb.proxy, Method: C.GoString(info.method), Target: C.GoString(info.target),
		Client: C.GoString(info.client), Group: C.GoString(info.group), Resumes: int(info.resumes),
		Worker: int(info.worker), token: uint64(info.token)}
	return runHook("request", cb.request, e)
}

//export ppGoResponse
func ppGoResponse(handle C.uintptr_t, ex *C.pp_exchange, info *C.pp_response_info) C.int {
	cb := cgo.Handle(handle).Value().(*callbacks)
	e := &Exchange{ex: unsafe.Pointer(ex), proxy: cb.proxy, Method: C.GoString(info.method), Target: C.GoString(info.target),
		Status: int(info.status), Backend: int(info.backend_id)}
	return runHook("response", cb.response, e)
}

//export ppGoConnect
func ppGoConnect(handle C.uintptr_t, ex *C.pp_exchange, info *C.pp_connect_info) C.int {
	cb := cgo.Handle(handle).Value().(*callbacks)
	e := &Exchange{ex: unsafe.Pointer(ex), proxy: cb.proxy, Client: C.GoString(info.client), Worker: int(info.worker)}
	return runHook("connect", cb.connect, e)
}
