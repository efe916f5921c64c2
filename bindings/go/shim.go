package poolproxy

/*
#cgo pkg-config: poolproxy
#include <poolproxy.h>
#include <stdint.h>
#include <stdlib.h>

*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"runtime/cgo"
	"time"
)

// call runs a library call and, on failure, reads the thread-local last-error text on the same
// OS thread before the goroutine can move.
func call(f func() C.int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rc := f()
	if rc >= 0 {
		return nil
	}
	return newError(int(rc), C.GoString(C.pp_last_error()))
}

// callInt is call for functions that return a non-negative value on success.
func callInt(f func() C.int) (int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rc := f()
	if rc >= 0 {
		return int(rc), nil
	}
	return 0, newError(int(rc), C.GoString(C.pp_last_error()))
}

// callbacks is what a running proxy's C side refers to, through a cgo.Handle.
type callbacks struct {
	log      func(level LogLevel, message string)
	event    func(Event)
	access   func(AccessEntry)
	request  func(*Exchange) error
	response func(*Exchange) error
	connect  func(*Exchange) error
	gate     *resumeGate // for the Resumers a hook's Pause gives
}

func recoverCallback(kind string) {
	if r := recover(); r != nil {
		fmt.Fprintf(os.Stderr, "poolproxy: %s callback panicked (recovered): %v\n", kind, r)
	}
}

//export ppGoLog
func ppGoLog(handle C.uintptr_t, level C.int, message *C.char) {
	defer recoverCallback("log")
	cb := cgo.Handle(handle).Value().(*callbacks)
	if cb.log != nil {
		cb.log(LogLevel(level), C.GoString(message))
	}
}

//export ppGoEvent
func ppGoEvent(handle C.uintptr_t, typ C.int, backend C.int, address *C.char, reason *C.char) {
	defer recoverCallback("event")
	cb := cgo.Handle(handle).Value().(*callbacks)
	if cb.event != nil {
		cb.event(Event{Type: EventType(typ), Backend: int(backend), Address: C.GoString(address), Reason: C.GoString(reason)})
	}
}

//export ppGoAccess
func ppGoAccess(handle C.uintptr_t, e *C.pp_access_entry) {
	defer recoverCallback("access")
	cb := cgo.Handle(handle).Value().(*callbacks)
	if cb.access == nil {
		return
	}
	us := func(v C.uint64_t) time.Duration { return time.Duration(v) * time.Microsecond }
	cb.access(AccessEntry{
		Worker:         int(e.worker),
		Backend:        int(e.backend_id),
		BackendAddress: C.GoString(e.backend),
		Client:         C.GoString(e.client),
		Method:         C.GoString(e.method),
		Target:         C.GoString(e.target),
		Status:         int(e.status),
		Reused:         e.reused != 0,
		BytesIn:        uint64(e.bytes_in),
		BytesOut:       uint64(e.bytes_out),
		QueueWait:      us(e.queue_wait_us),
		Connect:        us(e.connect_us),
		FirstByte:      us(e.first_byte_us),
		Total:          us(e.total_us),
	})
}
