package poolproxy

/*
#include <poolproxy.h>
#include <stdint.h>
#include <stdlib.h>

// Defined in callbacks.c: register the C trampolines with a cgo.Handle as userdata.
int pp_go_set_log(pp_config *cfg, uintptr_t handle, int level);
int pp_go_set_event(pp_config *cfg, uintptr_t handle);
int pp_go_set_access(pp_config *cfg, uintptr_t handle);
int pp_go_set_request(pp_config *cfg, uintptr_t handle);
int pp_go_set_response(pp_config *cfg, uintptr_t handle);
int pp_go_set_connect(pp_config *cfg, uintptr_t handle);
*/
import "C"

import (
	"context"
	"errors"
	"net"
	"runtime"
	"runtime/cgo"
	"sync"
	"time"
	"unsafe"
)

// Proxy is a running (or stopped) proxy. Its methods are safe for concurrent use.
type Proxy struct {
	ctl    sync.Mutex   // serializes Stop and Close (the C lifecycle calls)
	mu     sync.RWMutex // guards c: readers (stats, Addr) run while a Stop drains
	c      *C.pp_proxy
	handle cgo.Handle  // refers to this proxy's callbacks; deleted after the C proxy is freed
	gate   *resumeGate // what Resumers reach the C proxy through
}

// Start creates a proxy from cfg and starts it; it returns once the listener is bound. The
// configuration is copied: cfg may be changed or closed afterwards.
func Start(cfg *Config) (*Proxy, error) {
	h, err := cfg.handle()
	if err != nil {
		return nil, err
	}
	p := &Proxy{gate: &resumeGate{}}
	var handle uintptr
	if cfg.log != nil || cfg.event != nil || cfg.access != nil || cfg.request != nil || cfg.response != nil ||
		cfg.connect != nil {
		p.handle = cgo.NewHandle(&callbacks{log: cfg.log, event: cfg.event, access: cfg.access, request: cfg.request,
			response: cfg.response, connect: cfg.connect, gate: p.gate})
		handle = uintptr(p.handle)
	}
	// The C proxy copies the callbacks with this proxy's own handle; the config itself is
	// left without them, so closing the config never strands a running proxy's callbacks.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if cfg.log != nil {
		C.pp_go_set_log(h, C.uintptr_t(handle), C.int(cfg.logLevel))
	}
	if cfg.event != nil {
		C.pp_go_set_event(h, C.uintptr_t(handle))
	}
	if cfg.access != nil {
		C.pp_go_set_access(h, C.uintptr_t(handle))
	}
	if cfg.request != nil {
		C.pp_go_set_request(h, C.uintptr_t(handle))
	}
	if cfg.response != nil {
		C.pp_go_set_response(h, C.uintptr_t(handle))
	}
	if cfg.connect != nil {
		C.pp_go_set_connect(h, C.uintptr_t(handle))
	}
	rc := C.pp_proxy_new(&p.c, h)
	C.pp_go_set_log(h, 0, C.int(LogInfo))
	C.pp_go_set_event(h, 0)
	C.pp_go_set_access(h, 0)
	C.pp_go_set_request(h, 0)
	C.pp_go_set_response(h, 0)
	C.pp_go_set_connect(h, 0)
	if rc < 0 {
		err := newError(int(rc), C.GoString(C.pp_last_error()))
		p.release()
		return nil, err
	}
	p.gate.mu.Lock() // before the start: a hook may pause (and be resumed) at once
	p.gate.c = p.c
	p.gate.mu.Unlock()
	if rc := C.pp_proxy_start(p.c); rc < 0 {
		err := newError(int(rc), C.GoString(C.pp_last_error()))
		p.gate.mu.Lock()
		p.gate.c = nil
		p.gate.mu.Unlock()
		C.pp_proxy_free(p.c)
		p.c = nil
		p.release()
		return nil, err
	}
	runtime.SetFinalizer(p, (*Proxy).Close)
	return p, nil
}

func (p *Proxy) release() {
	if p.handle != 0 {
		p.handle.Delete()
		p.handle = 0
	}
}

// Addr is the bound listen address (the real port when "listen" asked for port 0).
func (p *Proxy) Addr() net.Addr {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.c == nil {
		return nil
	}
	buf := make([]byte, 128)
	if C.pp_proxy_local_address(p.c, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf))) < 0 {
		return nil
	}
	a, err := net.ResolveTCPAddr("tcp", C.GoString((*C.char)(unsafe.Pointer(&buf[0]))))
	if err != nil {
		return nil
	}
	return a
}

// Stop stops accepting at once and lets sessions in flight finish until ctx's deadline (no
// deadline: the configured drain_timeout), then closes what is left. It returns when every
// proxy thread has stopped. Stopping a stopped proxy returns ErrState.
func (p *Proxy) Stop(ctx context.Context) error {
	drain := -1
	if dl, ok := ctx.Deadline(); ok {
		drain = int(time.Until(dl).Milliseconds())
		if drain < 0 {
			drain = 0
		}
	}
	// TryLock: a Stop already under way (or a callback calling Stop while the proxy waits for
	// that callback's thread) gets ErrState instead of a deadlock.
	if !p.ctl.TryLock() {
		return &Error{Code: int(C.PP_ESTATE), Name: "PP_ESTATE", Message: "a Stop or Close is already under way"}
	}
	defer p.ctl.Unlock()
	p.mu.RLock()
	c := p.c
	p.mu.RUnlock()
	if c == nil {
		return &Error{Code: int(C.PP_ESTATE), Name: "PP_ESTATE", Message: "proxy is closed"}
	}
	return call(func() C.int { return C.pp_proxy_stop(c, C.int(drain)) })
}

// Close stops the proxy if it is running (without a drain) and frees it. After Close returns
// no callback runs. Safe to call twice; while a Stop is under way it returns ErrState.
func (p *Proxy) Close() error {
	if !p.ctl.TryLock() {
		return &Error{Code: int(C.PP_ESTATE), Name: "PP_ESTATE", Message: "a Stop or Close is already under way"}
	}
	defer p.ctl.Unlock()
	p.mu.RLock()
	c := p.c
	p.mu.RUnlock()
	if c == nil {
		return nil
	}
	if C.pp_proxy_state(c) == C.PP_STATE_RUNNING {
		if err := call(func() C.int { return C.pp_proxy_stop(c, 0) }); err != nil {
			return err
		}
	}
	p.gate.mu.Lock() // Resumers fail from here on, rather than reach a freed proxy
	p.gate.c = nil
	p.gate.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := call(func() C.int { return C.pp_proxy_free(c) }); err != nil {
		return err
	}
	p.c = nil
	p.release()
	runtime.SetFinalizer(p, nil)
	return nil
}

// Stats, WorkerStats and BackendStats are generated from poolproxy.h's tables (stats_gen.go).

func (p *Proxy) live() (*C.pp_proxy, error) {
	if p.c == nil {
		return nil, &Error{Code: int(C.PP_ESTATE), Name: "PP_ESTATE", Message: "proxy is closed"}
	}
	return p.c, nil
}

// Stats returns a snapshot of the whole-proxy counters. It never stops the workers.
func (p *Proxy) Stats() (Stats, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	c, err := p.live()
	if err != nil {
		return Stats{}, err
	}
	var s C.pp_stats
	s.struct_size = C.size_t(unsafe.Sizeof(s))
	if err := call(func() C.int { return C.pp_proxy_stats(c, &s) }); err != nil {
		return Stats{}, err
	}
	return statsFromC(&s), nil
}

// WorkerStats returns each worker's counters, in worker order.
func (p *Proxy) WorkerStats() ([]WorkerStats, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	c, err := p.live()
	if err != nil {
		return nil, err
	}
	n, err := callInt(func() C.int { return C.pp_proxy_worker_count(c) })
	if err != nil {
		return nil, err
	}
	out := make([]WorkerStats, n)
	for i := range out {
		var s C.pp_worker_stats
		s.struct_size = C.size_t(unsafe.Sizeof(s))
		if err := call(func() C.int { return C.pp_proxy_worker_stats(c, C.int(i), &s) }); err != nil {
			return nil, err
		}
		out[i] = workerStatsFromC(&s)
	}
	return out, nil
}

// BackendStats returns each backend's counters, in configuration order.
func (p *Proxy) BackendStats() ([]BackendStats, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	c, err := p.live()
	if err != nil {
		return nil, err
	}
	n, err := callInt(func() C.int { return C.pp_proxy_backend_count(c) })
	if err != nil {
		return nil, err
	}
	out := make([]BackendStats, n)
	buf := make([]byte, 256)
	for i := range out {
		var s C.pp_backend_stats
		s.struct_size = C.size_t(unsafe.Sizeof(s))
		err := call(func() C.int {
			return C.pp_proxy_backend_stats(c, C.int(i), &s, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
		})
		if err != nil {
			return nil, err
		}
		out[i] = backendStatsFromC(&s, C.GoString((*C.char)(unsafe.Pointer(&buf[0]))))
	}
	return out, nil
}

// LatencyKind selects the distribution Latency reports.
type LatencyKind int

const (
	// LatencyRequest is request head received to response complete (tcp: the session).
	LatencyRequest LatencyKind = C.PP_LATENCY_REQUEST
	// LatencyQueueWait is the time waiting for a pooled connection (only requests that waited).
	LatencyQueueWait LatencyKind = C.PP_LATENCY_QUEUE_WAIT
	// LatencyConnect is the time of successful backend connects.
	LatencyConnect LatencyKind = C.PP_LATENCY_CONNECT
	// LatencyTLSHandshake is the time of client TLS handshakes, from the accept.
	LatencyTLSHandshake LatencyKind = C.PP_LATENCY_TLS_HANDSHAKE
	// LatencyTLSBackendHandshake is the time of backend_tls handshakes, from the TCP connect.
	LatencyTLSBackendHandshake LatencyKind = C.PP_LATENCY_TLS_BACKEND_HANDSHAKE
)

// Latency is a latency distribution; quantiles come from histogram buckets (1, 1.5, 2, 2.5, 3,
// 4, 5, 6 and 7.5 per decade).
type Latency struct {
	Count uint64
	Sum   time.Duration
	P50   time.Duration
	P90   time.Duration
	P99   time.Duration
	P999  time.Duration
}

// Latency returns the distribution of kind for one worker, or for all workers when worker is -1.
func (p *Proxy) Latency(kind LatencyKind, worker int) (Latency, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	c, err := p.live()
	if err != nil {
		return Latency{}, err
	}
	var l C.pp_latency
	l.struct_size = C.size_t(unsafe.Sizeof(l))
	if err := call(func() C.int { return C.pp_proxy_latency(c, C.int(kind), C.int(worker), &l) }); err != nil {
		return Latency{}, err
	}
	us := func(v C.uint64_t) time.Duration { return time.Duration(v) * time.Microsecond }
	return Latency{Count: uint64(l.count), Sum: us(l.sum_us), P50: us(l.p50_us), P90: us(l.p90_us),
		P99: us(l.p99_us), P999: us(l.p999_us)}, nil
}

// Metrics returns every counter, gauge and histogram in the Prometheus text exposition format.
func (p *Proxy) Metrics() (string, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	c, err := p.live()
	if err != nil {
		return "", err
	}
	var n C.size_t
	if err := call(func() C.int { return C.pp_proxy_metrics(c, nil, 0, &n) }); err != nil && !errors.Is(err, ErrTruncated) {
		return "", err
	}
	for {
		buf := make([]byte, int(n)+1024)
		err := call(func() C.int {
			return C.pp_proxy_metrics(c, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &n)
		})
		if errors.Is(err, ErrTruncated) {
			continue // the text grew between the calls
		}
		if err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
}

// AdminPort returns the admin listener's port (option admin_listen); an error when it is off.
func (p *Proxy) AdminPort() (int, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	c, err := p.live()
	if err != nil {
		return 0, err
	}
	return callInt(func() C.int { return C.pp_proxy_admin_port(c) })
}

// BackendState is a backend's administrative state.
type BackendState int

// Backend states.
const (
	BackendActive   BackendState = 0 // takes requests
	BackendDraining BackendState = 1 // no new requests; those in flight finish
	BackendRemoved  BackendState = 2 // removed for good
)

// AddBackend adds a backend "host:port" with a weight in 1..1000 to the running proxy and
// returns its id (ids are never reused).
func (p *Proxy) AddBackend(address string, weight int) (int, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	c, err := p.live()
	if err != nil {
		return 0, err
	}
	ca := C.CString(address)
	defer C.free(unsafe.Pointer(ca))
	return callInt(func() C.int { return C.pp_proxy_add_backend(c, ca, C.int(weight)) })
}

// AddBackendSpec adds a backend given as the "backend" option writes it,
// "host:port[,weight=N][,group=NAME][,pool_max=N][,host=HOST]", to a group the proxy has, and
// returns its id.
func (p *Proxy) AddBackendSpec(spec string) (int, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	c, err := p.live()
	if err != nil {
		return 0, err
	}
	cs := C.CString(spec)
	defer C.free(unsafe.Pointer(cs))
	return callInt(func() C.int { return C.pp_proxy_add_backend_spec(c, cs) })
}

// Reload takes up cfg's backend groups, backends and routes without touching a client
// connection (pp_proxy_reload in poolproxy.h): new groups are added, a group whose options
// changed is replaced (its backends re-added under new ids, its waiting requests moved), groups
// and backends cfg no longer lists are removed (cfg is the whole set), the routes are replaced.
// The proxy keeps its callbacks and every other option (a warning through OnLog names each one
// that changed). A cfg that could not make a proxy changes nothing and returns the reason.
func (p *Proxy) Reload(cfg *Config) error {
	h, err := cfg.handle()
	if err != nil {
		return err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	c, err := p.live()
	if err != nil {
		return err
	}
	return call(func() C.int { return C.pp_proxy_reload(c, h) })
}

// RemoveBackend removes backend id: no new requests, those in flight finish, idle connections close.
func (p *Proxy) RemoveBackend(id int) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	c, err := p.live()
	if err != nil {
		return err
	}
	return call(func() C.int { return C.pp_proxy_remove_backend(c, C.int(id)) })
}

// DrainBackend drains backend id (drain true: no new requests) or makes it take requests again.
func (p *Proxy) DrainBackend(id int, drain bool) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	c, err := p.live()
	if err != nil {
		return err
	}
	d := C.int(0)
	if drain {
		d = 1
	}
	return call(func() C.int { return C.pp_proxy_drain_backend(c, C.int(id), d) })
}

// SetBackendWeight changes backend id's weight (1..1000).
func (p *Proxy) SetBackendWeight(id, weight int) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	c, err := p.live()
	if err != nil {
		return err
	}
	return call(func() C.int { return C.pp_proxy_set_backend_weight(c, C.int(id), C.int(weight)) })
}
