package poolproxy

/*
#include <poolproxy.h>
#include <stdlib.h>
*/
import "C"

import (
	"runtime"
	"strconv"
	"time"
	"unsafe"
)

// LogLevel is the severity of a log line.
type LogLevel int

// Log levels, most severe first.
const (
	LogError LogLevel = C.PP_LOG_ERROR
	LogWarn  LogLevel = C.PP_LOG_WARN
	LogInfo  LogLevel = C.PP_LOG_INFO
	LogDebug LogLevel = C.PP_LOG_DEBUG
)

// EventType says what an Event reports.
type EventType int

// Event types.
const (
	EventProxyStarted EventType = C.PP_EVENT_PROXY_STARTED // listener bound, workers running
	EventProxyStopped EventType = C.PP_EVENT_PROXY_STOPPED // every worker stopped; the last event
	EventBackendDown  EventType = C.PP_EVENT_BACKEND_DOWN  // connecting to a backend failed
	EventBackendUp    EventType = C.PP_EVENT_BACKEND_UP    // a backend answered again after failing
	// Active health checks marked a backend unhealthy / healthy again.
	EventBackendUnhealthy EventType = C.PP_EVENT_BACKEND_UNHEALTHY
	EventBackendHealthy   EventType = C.PP_EVENT_BACKEND_HEALTHY
	// A backend's circuit breaker opened, admits probes, closed again.
	EventBreakerOpen     EventType = C.PP_EVENT_BREAKER_OPEN
	EventBreakerHalfOpen EventType = C.PP_EVENT_BREAKER_HALF_OPEN
	EventBreakerClosed   EventType = C.PP_EVENT_BREAKER_CLOSED
	// A backend was added, removed, drained, or made ready again at runtime.
	EventBackendAdded    EventType = C.PP_EVENT_BACKEND_ADDED
	EventBackendRemoved  EventType = C.PP_EVENT_BACKEND_REMOVED
	EventBackendDraining EventType = C.PP_EVENT_BACKEND_DRAINING
	EventBackendReady    EventType = C.PP_EVENT_BACKEND_READY
)

// Event is a state change reported by the proxy.
type Event struct {
	Type    EventType
	Backend int    // backend index in configuration order, or -1
	Address string // the backend's or the listener's address
	Reason  string
}

// AccessEntry is one finished request (http mode) or session (tcp mode), for access logs.
type AccessEntry struct {
	Worker         int
	Backend        int    // backend index, or -1 when none was reached
	BackendAddress string // "" when none
	Client         string // "ip:port"
	Method         string // http; "" in tcp mode
	Target         string // http; "" in tcp mode
	Status         int    // http status sent to the client; 0 in tcp mode
	Reused         bool   // the backend connection came from the idle pool
	BytesIn        uint64 // from the client
	BytesOut       uint64 // to the client
	QueueWait      time.Duration
	Connect        time.Duration // zero when reused
	FirstByte      time.Duration // request sent to first response byte (http)
	Total          time.Duration
}

// Config holds options and backends for Start. Its methods are not safe for concurrent use.
// Close it when done; a finalizer frees it as a backstop only.
type Config struct {
	c        *C.pp_config
	log      func(LogLevel, string)
	logLevel LogLevel
	event    func(Event)
	access   func(AccessEntry)
	request  func(*Exchange) error
	response func(*Exchange) error
	connect  func(*Exchange) error
}

// NewConfig returns a configuration with every option at its default and no backend.
func NewConfig() (*Config, error) {
	cfg := &Config{logLevel: LogInfo}
	if err := call(func() C.int { return C.pp_config_new(&cfg.c) }); err != nil {
		return nil, err
	}
	runtime.SetFinalizer(cfg, (*Config).Close)
	return cfg, nil
}

// Close frees the configuration. Proxies started from it are unaffected. Safe to call twice.
func (c *Config) Close() error {
	if c.c != nil {
		C.pp_config_free(c.c)
		c.c = nil
	}
	runtime.SetFinalizer(c, nil)
	return nil
}

func (c *Config) handle() (*C.pp_config, error) {
	if c == nil || c.c == nil {
		return nil, &Error{Code: int(C.PP_EINVAL), Name: "PP_EINVAL", Message: "config is closed"}
	}
	return c.c, nil
}

// Set sets any option by name from text, exactly as the config file and CLI do
// ("pool_max", "16"). A bad value returns an error naming the option and the reason
// (errors.Is(err, ErrBadValue)); an unknown name, ErrNoOption.
func (c *Config) Set(name, value string) error {
	h, err := c.handle()
	if err != nil {
		return err
	}
	cn, cv := C.CString(name), C.CString(value)
	defer C.free(unsafe.Pointer(cn))
	defer C.free(unsafe.Pointer(cv))
	return call(func() C.int { return C.pp_config_set(h, cn, cv) })
}

// Get returns an option's current value as text.
func (c *Config) Get(name string) (string, error) {
	h, err := c.handle()
	if err != nil {
		return "", err
	}
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	buf := make([]byte, 4096)
	err = call(func() C.int {
		return C.pp_config_get(h, cn, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	})
	if err != nil {
		return "", err
	}
	return C.GoString((*C.char)(unsafe.Pointer(&buf[0]))), nil
}

// SetInt sets an integer option.
func (c *Config) SetInt(name string, v int) error { return c.Set(name, strconv.Itoa(v)) }

// SetDuration sets a duration option (millisecond precision).
func (c *Config) SetDuration(name string, d time.Duration) error {
	return c.Set(name, strconv.FormatInt(d.Milliseconds(), 10)+"ms")
}

// SetBool sets an on/off option.
func (c *Config) SetBool(name string, on bool) error {
	if on {
		return c.Set(name, "on")
	}
	return c.Set(name, "off")
}

// Listen sets the address to accept clients on ("127.0.0.1:0" picks a free port).
func (c *Config) Listen(addr string) error { return c.Set("listen", addr) }

// Workers sets the number of worker threads (0: one per CPU).
func (c *Config) Workers(n int) error { return c.SetInt("workers", n) }

// PoolMax sets the hard cap on connections per backend, across all workers.
func (c *Config) PoolMax(n int) error { return c.SetInt("pool_max", n) }

// PoolMinIdle sets how many connections per backend are kept open ahead of demand.
func (c *Config) PoolMinIdle(n int) error { return c.SetInt("pool_min_idle", n) }

// QueueTimeout sets how long a session waits for a backend connection.
func (c *Config) QueueTimeout(d time.Duration) error { return c.SetDuration("queue_timeout", d) }

// ConnectTimeout sets how long connecting to a backend may take.
func (c *Config) ConnectTimeout(d time.Duration) error { return c.SetDuration("connect_timeout", d) }

// IdleTimeout sets how long a tcp session may pass no byte before it is closed.
func (c *Config) IdleTimeout(d time.Duration) error { return c.SetDuration("idle_timeout", d) }

// AddBackend appends a backend "host:port" or "[v6]:port" with a weight in 1..1000.
func (c *Config) AddBackend(addr string, weight int) error {
	h, err := c.handle()
	if err != nil {
		return err
	}
	ca := C.CString(addr)
	defer C.free(unsafe.Pointer(ca))
	return call(func() C.int { return C.pp_config_add_backend(h, ca, C.int(weight)) })
}

// LoadFile reads "name = value" lines from a file.
func (c *Config) LoadFile(path string) error {
	h, err := c.handle()
	if err != nil {
		return err
	}
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	return call(func() C.int { return C.pp_config_load_file(h, cp) })
}

// OnLog sets a function to receive log lines up to maxLevel. It runs on the proxy's threads.
func (c *Config) OnLog(maxLevel LogLevel, f func(level LogLevel, message string)) {
	c.log, c.logLevel = f, maxLevel
}

// OnEvent sets a function to receive events. It runs on the proxy's threads.
func (c *Config) OnEvent(f func(Event)) { c.event = f }

// OnAccess sets a function to receive one entry per finished request (http) or session (tcp).
// It runs on worker threads and must not block.
func (c *Config) OnAccess(f func(AccessEntry)) { c.access = f }
