//! Safe Rust API for libpoolproxy, an embeddable pooled, worker-balanced proxy.
//!
//! The proxy runs on its own threads inside the process (one event loop per worker). This crate
//! configures it, starts and stops it, reads its statistics, and delivers its log lines and
//! events to closures.
//!
//! ```no_run
//! use std::time::Duration;
//! use poolproxy::{Config, Proxy};
//!
//! # fn main() -> Result<(), poolproxy::Error> {
//! let mut cfg = Config::new()?;
//! cfg.listen("127.0.0.1:7000")?
//!     .pool_max(16)?
//!     .pool_min_idle(2)?
//!     .queue_timeout(Duration::from_secs(2))?
//!     .add_backend("127.0.0.1:6379", 1)?;
//! cfg.on_event(|e| eprintln!("{e:?}"));
//! let mut proxy = Proxy::start(&cfg)?;
//! println!("listening on {}", proxy.local_addr());
//! proxy.stop(Duration::from_secs(5))?; // drain for at most 5 s
//! # Ok(())
//! # }
//! ```
//!
//! The library is found with pkg-config: install `libpoolproxy-dev`, or set
//! `PKG_CONFIG_PATH=<build>/pkgconfig`.
#![deny(missing_docs)]

mod callbacks;
mod error;
mod hooks;
mod stats;

use std::ffi::{CStr, CString};
use std::net::SocketAddr;
use std::os::raw::{c_char, c_int, c_void};
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use poolproxy_sys as sys;

pub use error::{Error, ErrorCode};

use callbacks::{AccessFn, Callbacks, EventFn, LogFn};
use error::check;
pub use hooks::{Exchange, HookKind, Resumer};
use hooks::{Gate, HookFn};
pub use stats::{BackendStats, Stats, WorkerStats};

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Errors.
    Error,
    /// Warnings.
    Warn,
    /// Information.
    Info,
    /// Debugging detail.
    Debug,
}

impl LogLevel {
    fn from_raw(level: c_int) -> LogLevel {
        match level {
            sys::PP_LOG_ERROR => LogLevel::Error,
            sys::PP_LOG_WARN => LogLevel::Warn,
            sys::PP_LOG_INFO => LogLevel::Info,
            _ => LogLevel::Debug,
        }
    }
    fn raw(self) -> c_int {
        match self {
            LogLevel::Error => sys::PP_LOG_ERROR,
            LogLevel::Warn => sys::PP_LOG_WARN,
            LogLevel::Info => sys::PP_LOG_INFO,
            LogLevel::Debug => sys::PP_LOG_DEBUG,
        }
    }
}

/// What an [`Event`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventType {
    /// The listener is bound and the workers run.
    ProxyStarted,
    /// Every worker has stopped; the last event of a proxy.
    ProxyStopped,
    /// Connecting to a backend failed after it last worked.
    BackendDown,
    /// A backend answered again after failures.
    BackendUp,
    /// Active health checks marked a backend unhealthy.
    BackendUnhealthy,
    /// Active health checks marked a backend healthy again.
    BackendHealthy,
    /// A backend's circuit breaker opened: no new requests go to it.
    BreakerOpen,
    /// The breaker's open time passed: probe requests are admitted.
    BreakerHalfOpen,
    /// A probe succeeded: the backend takes requests again.
    BreakerClosed,
    /// A backend was added at runtime.
    BackendAdded,
    /// A backend was removed.
    BackendRemoved,
    /// A backend is draining.
    BackendDraining,
    /// A drained backend takes requests again.
    BackendReady,
    /// An event type this crate does not know yet.
    Other(i32),
}

impl EventType {
    fn from_raw(t: c_int) -> EventType {
        match t {
            sys::PP_EVENT_PROXY_STARTED => EventType::ProxyStarted,
            sys::PP_EVENT_PROXY_STOPPED => EventType::ProxyStopped,
            sys::PP_EVENT_BACKEND_DOWN => EventType::BackendDown,
            sys::PP_EVENT_BACKEND_UP => EventType::BackendUp,
            sys::PP_EVENT_BACKEND_UNHEALTHY => EventType::BackendUnhealthy,
            sys::PP_EVENT_BACKEND_HEALTHY => EventType::BackendHealthy,
            sys::PP_EVENT_BREAKER_OPEN => EventType::BreakerOpen,
            sys::PP_EVENT_BREAKER_HALF_OPEN => EventType::BreakerHalfOpen,
            sys::PP_EVENT_BREAKER_CLOSED => EventType::BreakerClosed,
            sys::PP_EVENT_BACKEND_ADDED => EventType::BackendAdded,
            sys::PP_EVENT_BACKEND_REMOVED => EventType::BackendRemoved,
            sys::PP_EVENT_BACKEND_DRAINING => EventType::BackendDraining,
            sys::PP_EVENT_BACKEND_READY => EventType::BackendReady,
            other => EventType::Other(other),
        }
    }
}

/// A state change reported by the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventType,
    /// The backend's index in configuration order, when a backend is concerned.
    pub backend: Option<usize>,
    /// The backend's or the listener's address.
    pub address: String,
    /// Why, e.g. "connection refused".
    pub reason: String,
}

/// One finished request (http mode) or session (tcp mode), for access logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    /// The worker that served it.
    pub worker: usize,
    /// The backend's index, when one was reached.
    pub backend: Option<usize>,
    /// The backend's address, or "".
    pub backend_address: String,
    /// The client's address.
    pub client: String,
    /// http: the request method; tcp: "".
    pub method: String,
    /// http: the request target; tcp: "".
    pub target: String,
    /// http: the status sent to the client (0: none); tcp: 0.
    pub status: u16,
    /// Whether the backend connection came from the idle pool.
    pub reused: bool,
    /// Bytes from the client.
    pub bytes_in: u64,
    /// Bytes to the client.
    pub bytes_out: u64,
    /// Time spent waiting for a pooled connection.
    pub queue_wait: Duration,
    /// Time spent opening a backend connection (zero when reused).
    pub connect: Duration,
    /// Request sent to first response byte (http).
    pub first_byte: Duration,
    /// Request head (tcp: accept) to the end.
    pub total: Duration,
}

/// Backend selection policy (option `lb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lb {
    /// Smooth weighted round robin.
    RoundRobin,
    /// Least outstanding sessions, by power of two choices.
    LeastConn,
    /// Weighted random.
    Random,
}

/// A backend address: `"host:port"`, `"[v6]:port"`, or a [`SocketAddr`].
pub trait BackendAddr {
    /// The address as the library parses it.
    fn to_backend_string(&self) -> String;
}

impl BackendAddr for &str {
    fn to_backend_string(&self) -> String {
        (*self).to_string()
    }
}

impl BackendAddr for String {
    fn to_backend_string(&self) -> String {
        self.clone()
    }
}

impl BackendAddr for SocketAddr {
    fn to_backend_string(&self) -> String {
        self.to_string() // IPv6 comes out as "[::1]:80", as the library wants
    }
}

fn cstring(s: &str, what: &str) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error::new(sys::PP_EINVAL, &format!("{what} contains a NUL byte")))
}

fn duration_text(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// Options and backends for [`Proxy::start`]. The typed methods return `&mut Self` so they
/// chain with `?`. `Send` but not `Sync`: use a `Config` from one thread at a time.
pub struct Config {
    raw: *mut sys::pp_config,
    log: Option<(Arc<LogFn>, LogLevel)>,
    event: Option<Arc<EventFn>>,
    access: Option<Arc<AccessFn>>,
    request: Option<Arc<HookFn>>,
    response: Option<Arc<HookFn>>,
    connect: Option<Arc<HookFn>>,
}

// SAFETY: a pp_config may move between threads; it must only not be used by two at once,
// which &mut self and the missing Sync guarantee.
unsafe impl Send for Config {}

impl Config {
    /// A configuration with every option at its default and no backend.
    pub fn new() -> Result<Config, Error> {
        let mut raw = ptr::null_mut();
        // SAFETY: raw is a valid out pointer.
        check(unsafe { sys::pp_config_new(&mut raw) })?;
        Ok(Config {
            raw,
            log: None,
            event: None,
            access: None,
            request: None,
            response: None,
            connect: None,
        })
    }

    /// Sets any option by name from text, as the CLI and config files do
    /// (`cfg.set("pool_max", "16")`). A bad value fails with [`ErrorCode::BadValue`] and a
    /// message naming the option; an unknown name with [`ErrorCode::NoOption`].
    pub fn set(&mut self, name: &str, value: &str) -> Result<&mut Self, Error> {
        let (n, v) = (
            cstring(name, "option name")?,
            cstring(value, "option value")?,
        );
        // SAFETY: raw is live; the strings outlive the call.
        check(unsafe { sys::pp_config_set(self.raw, n.as_ptr(), v.as_ptr()) })?;
        Ok(self)
    }

    /// An option's current value as text.
    pub fn get(&self, name: &str) -> Result<String, Error> {
        let n = cstring(name, "option name")?;
        let mut buf = vec![0u8; 4096];
        // SAFETY: buf is writable for its length.
        check(unsafe {
            sys::pp_config_get(
                self.raw,
                n.as_ptr(),
                buf.as_mut_ptr() as *mut c_char,
                buf.len(),
            )
        })?;
        // SAFETY: the library NUL-terminated what it wrote.
        Ok(unsafe { CStr::from_ptr(buf.as_ptr() as *const c_char) }
            .to_string_lossy()
            .into_owned())
    }

    /// Address to accept clients on (`"127.0.0.1:0"` picks a free port).
    pub fn listen(&mut self, addr: &str) -> Result<&mut Self, Error> {
        self.set("listen", addr)
    }

    /// Worker threads (0: one per CPU).
    pub fn workers(&mut self, n: usize) -> Result<&mut Self, Error> {
        self.set("workers", &n.to_string())
    }

    /// Client connections open at once; more are closed on accept and counted.
    pub fn max_connections(&mut self, n: usize) -> Result<&mut Self, Error> {
        self.set("max_connections", &n.to_string())
    }

    /// Backend selection policy.
    pub fn lb(&mut self, lb: Lb) -> Result<&mut Self, Error> {
        self.set(
            "lb",
            match lb {
                Lb::RoundRobin => "round_robin",
                Lb::LeastConn => "least_conn",
                Lb::Random => "random",
            },
        )
    }

    /// Hard cap on connections per backend across all workers (0: no cap, no pre-warming).
    pub fn pool_max(&mut self, n: usize) -> Result<&mut Self, Error> {
        self.set("pool_max", &n.to_string())
    }

    /// Connections per backend kept open ahead of demand.
    pub fn pool_min_idle(&mut self, n: usize) -> Result<&mut Self, Error> {
        self.set("pool_min_idle", &n.to_string())
    }

    /// An idle pooled connection is closed after this (zero: never).
    pub fn pool_idle_timeout(&mut self, d: Duration) -> Result<&mut Self, Error> {
        self.set("pool_idle_timeout", &duration_text(d))
    }

    /// A backend connection is retired at its next idle moment after this age (zero: never).
    pub fn max_conn_lifetime(&mut self, d: Duration) -> Result<&mut Self, Error> {
        self.set("max_conn_lifetime", &duration_text(d))
    }

    /// Sessions that may wait for a backend connection when the pool is full.
    pub fn queue_max(&mut self, n: usize) -> Result<&mut Self, Error> {
        self.set("queue_max", &n.to_string())
    }

    /// How long a session waits for a backend connection.
    pub fn queue_timeout(&mut self, d: Duration) -> Result<&mut Self, Error> {
        self.set("queue_timeout", &duration_text(d))
    }

    /// How long connecting to a backend may take.
    pub fn connect_timeout(&mut self, d: Duration) -> Result<&mut Self, Error> {
        self.set("connect_timeout", &duration_text(d))
    }

    /// A tcp session with no byte in either direction for this long is closed (zero: never).
    pub fn idle_timeout(&mut self, d: Duration) -> Result<&mut Self, Error> {
        self.set("idle_timeout", &duration_text(d))
    }

    /// Appends a backend with a weight in 1..=1000.
    pub fn add_backend<A: BackendAddr>(
        &mut self,
        addr: A,
        weight: u32,
    ) -> Result<&mut Self, Error> {
        let a = cstring(&addr.to_backend_string(), "backend address")?;
        let w = c_int::try_from(weight).unwrap_or(c_int::MAX);
        // SAFETY: raw is live; a outlives the call.
        check(unsafe { sys::pp_config_add_backend(self.raw, a.as_ptr(), w) })?;
        Ok(self)
    }

    /// Reads `name = value` lines from a file; nothing is applied if a line is bad.
    pub fn load_file<P: AsRef<Path>>(&mut self, path: P) -> Result<&mut Self, Error> {
        let p = cstring(&path.as_ref().to_string_lossy(), "path")?;
        // SAFETY: raw is live; p outlives the call.
        check(unsafe { sys::pp_config_load_file(self.raw, p.as_ptr()) })?;
        Ok(self)
    }

    /// Receives log lines up to `max_level`, on the proxy's threads (it must not block).
    pub fn on_log<F>(&mut self, max_level: LogLevel, f: F) -> &mut Self
    where
        F: Fn(LogLevel, &str) + Send + Sync + 'static,
    {
        self.log = Some((Arc::new(f), max_level));
        self
    }

    /// Receives one entry per finished request (http) or session (tcp), on worker threads (it
    /// must not block).
    pub fn on_access<F>(&mut self, f: F) -> &mut Self
    where
        F: Fn(&AccessEntry) + Send + Sync + 'static,
    {
        self.access = Some(Arc::new(f));
        self
    }

    /// Receives events, on the proxy's threads (it must not block).
    pub fn on_event<F>(&mut self, f: F) -> &mut Self
    where
        F: Fn(&Event) + Send + Sync + 'static,
    {
        self.event = Some(Arc::new(f));
        self
    }

    /// The request hook (http mode), on worker threads (it must not block: pause instead). An
    /// `Err` or a panic answers the client 500.
    pub fn on_request<F>(&mut self, f: F) -> &mut Self
    where
        F: Fn(&mut Exchange<'_>) -> Result<(), Error> + Send + Sync + 'static,
    {
        self.request = Some(Arc::new(f));
        self
    }

    /// The response hook (http mode): may change the response's fields. An `Err` or a panic
    /// answers the client 500.
    pub fn on_response<F>(&mut self, f: F) -> &mut Self
    where
        F: Fn(&mut Exchange<'_>) -> Result<(), Error> + Send + Sync + 'static,
    {
        self.response = Some(Arc::new(f));
        self
    }

    /// The connect hook (tcp mode): may pick the group; an `Err` or a panic closes the
    /// connection.
    pub fn on_connect<F>(&mut self, f: F) -> &mut Self
    where
        F: Fn(&mut Exchange<'_>) -> Result<(), Error> + Send + Sync + 'static,
    {
        self.connect = Some(Arc::new(f));
        self
    }
}

impl Drop for Config {
    fn drop(&mut self) {
        // SAFETY: raw came from pp_config_new and is freed once.
        unsafe { sys::pp_config_free(self.raw) }
    }
}

/// A proxy, started by [`Proxy::start`]. Dropping it stops it (without a drain) and frees it;
/// no callback runs after the drop. `Send` and `Sync`: the statistics and the address may be
/// read from any thread while `stop` (which needs `&mut self`) runs on one.
pub struct Proxy {
    raw: *mut sys::pp_proxy,
    callbacks: Box<Callbacks>,
}

// SAFETY: the C API allows stats and address reads from any thread; lifecycle calls need
// &mut self here, so they are never concurrent.
unsafe impl Send for Proxy {}
// SAFETY: as above: &self methods only call functions documented as safe from any thread.
unsafe impl Sync for Proxy {}

impl Proxy {
    /// Creates a proxy from `config` and starts it; returns once the listener is bound. The
    /// configuration is copied: it may be changed or dropped afterwards.
    pub fn start(config: &Config) -> Result<Proxy, Error> {
        let callbacks = Box::new(Callbacks {
            log: config.log.as_ref().map(|(f, _)| f.clone()),
            event: config.event.clone(),
            access: config.access.clone(),
            request: config.request.clone(),
            response: config.response.clone(),
            connect: config.connect.clone(),
            gate: Arc::new(Gate {
                raw: std::sync::RwLock::new(ptr::null_mut()),
            }),
            panics: AtomicUsize::new(0),
        });
        let ud = &*callbacks as *const Callbacks as *mut c_void;
        // The C proxy copies the callbacks with this proxy's own userdata; they are cleared
        // from the config right after, so the config never points at a dropped Proxy.
        // SAFETY: config.raw is live; ud stays valid as long as the Proxy (Box address).
        unsafe {
            if let Some((_, level)) = &config.log {
                sys::pp_config_set_log_callback(
                    config.raw,
                    Some(callbacks::log_trampoline),
                    ud,
                    level.raw(),
                );
            }
            if config.event.is_some() {
                sys::pp_config_set_event_callback(
                    config.raw,
                    Some(callbacks::event_trampoline),
                    ud,
                );
            }
            if config.access.is_some() {
                sys::pp_config_set_access_callback(
                    config.raw,
                    Some(callbacks::access_trampoline),
                    ud,
                );
            }
            if config.request.is_some() {
                sys::pp_config_set_request_hook(config.raw, Some(hooks::request_trampoline), ud);
            }
            if config.response.is_some() {
                sys::pp_config_set_response_hook(config.raw, Some(hooks::response_trampoline), ud);
            }
            if config.connect.is_some() {
                sys::pp_config_set_connect_hook(config.raw, Some(hooks::connect_trampoline), ud);
            }
        }
        let mut raw = ptr::null_mut();
        // SAFETY: out pointer and config are valid.
        let rc = unsafe { sys::pp_proxy_new(&mut raw, config.raw) };
        let new_err = if rc < 0 { Some(Error::last(rc)) } else { None };
        // SAFETY: clearing callbacks on a live config.
        unsafe {
            sys::pp_config_set_log_callback(config.raw, None, ptr::null_mut(), sys::PP_LOG_INFO);
            sys::pp_config_set_event_callback(config.raw, None, ptr::null_mut());
            sys::pp_config_set_access_callback(config.raw, None, ptr::null_mut());
            sys::pp_config_set_request_hook(config.raw, None, ptr::null_mut());
            sys::pp_config_set_response_hook(config.raw, None, ptr::null_mut());
            sys::pp_config_set_connect_hook(config.raw, None, ptr::null_mut());
        }
        if let Some(e) = new_err {
            return Err(e);
        }
        *callbacks
            .gate
            .raw
            .write()
            .unwrap_or_else(|e| e.into_inner()) = raw;
        let proxy = Proxy { raw, callbacks };
        // SAFETY: raw is a live, created proxy.
        check(unsafe { sys::pp_proxy_start(proxy.raw) })?; // on error, Drop frees it
        Ok(proxy)
    }

    /// The bound listen address (the real port when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        let mut buf = [0u8; 128];
        // SAFETY: buf is writable for its length; the proxy is live.
        let rc = unsafe {
            sys::pp_proxy_local_address(self.raw, buf.as_mut_ptr() as *mut c_char, buf.len())
        };
        assert!(rc >= 0, "a started proxy always has a local address");
        // SAFETY: NUL-terminated by the library.
        let text = unsafe { CStr::from_ptr(buf.as_ptr() as *const c_char) }.to_string_lossy();
        text.parse()
            .expect("the library prints socket addresses Rust parses")
    }

    /// Stops accepting at once, lets sessions in flight finish for up to `drain`, then closes
    /// what is left; returns when every proxy thread has stopped. A second stop fails with
    /// [`ErrorCode::State`].
    pub fn stop(&mut self, drain: Duration) -> Result<(), Error> {
        let ms = c_int::try_from(drain.as_millis()).unwrap_or(c_int::MAX);
        // SAFETY: the proxy is live; &mut self means no other lifecycle call runs.
        check(unsafe { sys::pp_proxy_stop(self.raw, ms) }).map(|_| ())
    }

    /// Whether the proxy is running (started and not stopped).
    pub fn is_running(&self) -> bool {
        // SAFETY: pp_proxy_state is safe from any thread.
        unsafe { sys::pp_proxy_state(self.raw) == sys::PP_STATE_RUNNING }
    }

    /// How many times a callback closure panicked (each panic was caught and reported).
    pub fn callback_panics(&self) -> usize {
        self.callbacks.panics.load(Ordering::Relaxed)
    }

    /// A snapshot of the whole-proxy counters; never stops the workers.
    pub fn stats(&self) -> Stats {
        let mut s = sys::pp_stats {
            struct_size: std::mem::size_of::<sys::pp_stats>(),
            ..Default::default()
        };
        // SAFETY: s is a valid out struct with struct_size set.
        unsafe { sys::pp_proxy_stats(self.raw, &mut s) };
        Stats::from_raw(&s)
    }

    /// The distribution of one latency (`kind`) for one worker, or for all when `worker` is
    /// `None`. Quantiles come from histogram buckets (1, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5 per decade).
    pub fn latency(&self, kind: LatencyKind, worker: Option<usize>) -> Result<Latency, Error> {
        let mut l = sys::pp_latency {
            struct_size: std::mem::size_of::<sys::pp_latency>(),
            ..Default::default()
        };
        let w = match worker {
            Some(i) => c_int::try_from(i)
                .map_err(|_| Error::new(sys::PP_EINVAL, "worker index too large"))?,
            None => -1,
        };
        // SAFETY: l is a valid out struct with struct_size set.
        check(unsafe { sys::pp_proxy_latency(self.raw, kind as c_int, w, &mut l) })?;
        Ok(Latency {
            count: l.count,
            sum_us: l.sum_us,
            p50_us: l.p50_us,
            p90_us: l.p90_us,
            p99_us: l.p99_us,
            p999_us: l.p999_us,
        })
    }

    /// Every counter, gauge and histogram in the Prometheus text exposition format.
    pub fn metrics(&self) -> Result<String, Error> {
        let mut len = 0usize;
        // SAFETY: a NULL buffer of size 0 asks for the length only.
        let rc = unsafe { sys::pp_proxy_metrics(self.raw, std::ptr::null_mut(), 0, &mut len) };
        if rc != sys::PP_ETRUNC {
            check(rc)?;
        }
        loop {
            let mut buf = vec![0u8; len + 1024];
            // SAFETY: buf is writable for buf.len() bytes.
            let rc = unsafe {
                sys::pp_proxy_metrics(
                    self.raw,
                    buf.as_mut_ptr() as *mut c_char,
                    buf.len(),
                    &mut len,
                )
            };
            if rc == sys::PP_ETRUNC {
                continue; // the text grew between the calls
            }
            check(rc)?;
            buf.truncate(len);
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
    }

    /// Adds a backend `host:port` with a weight in 1..=1000 to the running proxy; returns its
    /// id (ids are never reused).
    pub fn add_backend(&self, address: &str, weight: u32) -> Result<usize, Error> {
        let addr = cstring(address, "address")?;
        let weight = c_int::try_from(weight).unwrap_or(c_int::MAX);
        // SAFETY: raw is live; addr is a valid C string for the call.
        let id = check(unsafe { sys::pp_proxy_add_backend(self.raw, addr.as_ptr(), weight) })?;
        Ok(id as usize)
    }

    /// Adds a backend given as the `backend` option writes it,
    /// `host:port[,weight=N][,group=NAME][,pool_max=N][,host=HOST]`, to a group the proxy
    /// has; returns its id.
    pub fn add_backend_spec(&self, spec: &str) -> Result<usize, Error> {
        let spec = cstring(spec, "backend spec")?;
        // SAFETY: raw is live; spec is a valid C string for the call.
        let id = check(unsafe { sys::pp_proxy_add_backend_spec(self.raw, spec.as_ptr()) })?;
        Ok(id as usize)
    }

    /// Takes up `config`'s backend groups, backends and routes without touching a client
    /// connection (`pp_proxy_reload` in poolproxy.h): new groups are added, a group whose
    /// options changed is replaced (its backends re-added under new ids, its waiting requests
    /// moved), groups and backends `config` no longer lists are removed (it is the whole set),
    /// the routes are replaced. The proxy keeps its callbacks and every other option (a
    /// warning through `on_log` names each one that changed). A configuration that could not
    /// make a proxy changes nothing and returns the reason.
    pub fn reload(&self, config: &Config) -> Result<(), Error> {
        // SAFETY: raw is live; config.raw is a live pp_config, only read for the call.
        check(unsafe { sys::pp_proxy_reload(self.raw, config.raw) }).map(|_| ())
    }

    /// Removes backend `id`: no new requests, those in flight finish, idle connections close.
    pub fn remove_backend(&self, id: usize) -> Result<(), Error> {
        let id = c_int::try_from(id).unwrap_or(c_int::MAX);
        // SAFETY: raw is live.
        check(unsafe { sys::pp_proxy_remove_backend(self.raw, id) }).map(|_| ())
    }

    /// Drains backend `id` (`true`: no new requests) or makes it take requests again.
    pub fn drain_backend(&self, id: usize, drain: bool) -> Result<(), Error> {
        let id = c_int::try_from(id).unwrap_or(c_int::MAX);
        // SAFETY: raw is live.
        check(unsafe { sys::pp_proxy_drain_backend(self.raw, id, drain as c_int) }).map(|_| ())
    }

    /// Changes backend `id`'s weight (1..=1000).
    pub fn set_backend_weight(&self, id: usize, weight: u32) -> Result<(), Error> {
        let id = c_int::try_from(id).unwrap_or(c_int::MAX);
        let weight = c_int::try_from(weight).unwrap_or(c_int::MAX);
        // SAFETY: raw is live.
        check(unsafe { sys::pp_proxy_set_backend_weight(self.raw, id, weight) }).map(|_| ())
    }

    /// The admin listener's port (option `admin_listen`), or an error when it is off.
    pub fn admin_port(&self) -> Result<u16, Error> {
        // SAFETY: safe from any thread on a live proxy.
        let rc = unsafe { sys::pp_proxy_admin_port(self.raw) };
        check(rc)?;
        Ok(rc as u16)
    }

    /// Each worker's counters, in worker order.
    pub fn worker_stats(&self) -> Vec<WorkerStats> {
        // SAFETY: safe from any thread on a live proxy.
        let n = unsafe { sys::pp_proxy_worker_count(self.raw) }.max(0);
        (0..n)
            .map(|i| {
                let mut s = sys::pp_worker_stats {
                    struct_size: std::mem::size_of::<sys::pp_worker_stats>(),
                    ..Default::default()
                };
                // SAFETY: i is in range; s is a valid out struct.
                unsafe { sys::pp_proxy_worker_stats(self.raw, i, &mut s) };
                WorkerStats::from_raw(&s)
            })
            .collect()
    }

    /// Each backend's counters, in configuration order.
    pub fn backend_stats(&self) -> Vec<BackendStats> {
        // SAFETY: safe from any thread on a live proxy.
        let n = unsafe { sys::pp_proxy_backend_count(self.raw) }.max(0);
        (0..n)
            .map(|i| {
                let mut s = sys::pp_backend_stats {
                    struct_size: std::mem::size_of::<sys::pp_backend_stats>(),
                    ..Default::default()
                };
                let mut addr = [0u8; 256];
                // SAFETY: i is in range; s and addr are valid out buffers.
                unsafe {
                    sys::pp_proxy_backend_stats(
                        self.raw,
                        i,
                        &mut s,
                        addr.as_mut_ptr() as *mut c_char,
                        addr.len(),
                    )
                };
                // SAFETY: NUL-terminated by the library (or zeroed).
                let address = unsafe { CStr::from_ptr(addr.as_ptr() as *const c_char) }
                    .to_string_lossy()
                    .into_owned();
                BackendStats::from_raw(&s, address)
            })
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Resumers still held elsewhere fail from here on instead of reaching a freed proxy.
        *self
            .callbacks
            .gate
            .raw
            .write()
            .unwrap_or_else(|e| e.into_inner()) = ptr::null_mut();
        // SAFETY: raw is live; after pp_proxy_free returns no callback runs, so the boxed
        // callbacks may be dropped with self.
        unsafe {
            if sys::pp_proxy_state(self.raw) == sys::PP_STATE_RUNNING {
                sys::pp_proxy_stop(self.raw, 0);
            }
            sys::pp_proxy_free(self.raw);
        }
    }
}

/// Which latency `Proxy::latency` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum LatencyKind {
    /// HTTP: request head received to response complete; tcp: the session.
    Request = 0,
    /// Waiting for a pooled backend connection (only requests that waited).
    QueueWait = 1,
    /// Successful backend connects.
    Connect = 2,
    /// Client TLS handshakes completed, from the accept.
    TlsHandshake = 3,
    /// `backend_tls` handshakes completed, from the TCP connect.
    TlsBackendHandshake = 4,
}

/// A latency distribution in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    /// Observations.
    pub count: u64,
    /// Their sum.
    pub sum_us: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
}

/// A backend's administrative state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendState {
    /// Takes requests.
    #[default]
    Active,
    /// No new requests; those in flight finish.
    Draining,
    /// Removed for good.
    Removed,
}

impl BackendState {
    pub(crate) fn from_raw(state: u64) -> Self {
        match state {
            0 => BackendState::Active,
            1 => BackendState::Draining,
            _ => BackendState::Removed,
        }
    }
}

/// The loaded library's version, e.g. "0.1.0".
pub fn version() -> String {
    // SAFETY: a static string.
    unsafe { CStr::from_ptr(sys::pp_version_string()) }
        .to_string_lossy()
        .into_owned()
}
