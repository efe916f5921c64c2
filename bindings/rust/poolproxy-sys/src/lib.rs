//! Raw FFI declarations for `poolproxy.h`, the C API of libpoolproxy.
//!
//! Everything here mirrors the header one to one; `tests/layout.rs` checks every struct's size
//! and field offsets against the C compiler. Use the safe `poolproxy` crate instead unless you
//! need the raw calls. The documentation of each function is in `poolproxy.h`.
#![allow(non_camel_case_types)]
#![deny(missing_docs)]

use std::marker::{PhantomData, PhantomPinned};
use std::os::raw::{c_char, c_int, c_uint, c_void};

/// Opaque configuration handle (`pp_config`).
#[repr(C)]
pub struct pp_config {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// Opaque exchange handle a hook gets (`pp_exchange`), valid during the hook call only.
#[repr(C)]
pub struct pp_exchange {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// Opaque proxy handle (`pp_proxy`).
#[repr(C)]
pub struct pp_proxy {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `PP_VERSION_MAJOR` of the header these declarations follow.
pub const PP_VERSION_MAJOR: c_uint = 0;
/// `PP_VERSION_MINOR`.
pub const PP_VERSION_MINOR: c_uint = 3;
/// `PP_VERSION_PATCH`.
pub const PP_VERSION_PATCH: c_uint = 0;

/// Success.
pub const PP_OK: c_int = 0;
/// Invalid argument.
pub const PP_EINVAL: c_int = -1;
/// Out of memory.
pub const PP_ENOMEM: c_int = -2;
/// No such option.
pub const PP_ENOOPT: c_int = -3;
/// Invalid option value.
pub const PP_EBADVALUE: c_int = -4;
/// Operation not allowed in the current state.
pub const PP_ESTATE: c_int = -5;
/// Invalid address.
pub const PP_EADDR: c_int = -6;
/// Cannot listen on the address.
pub const PP_EBIND: c_int = -7;
/// No backend configured.
pub const PP_ENOBACKEND: c_int = -8;
/// Input/output error.
pub const PP_EIO: c_int = -9;
/// System resource error.
pub const PP_ESYS: c_int = -10;
/// Buffer too small.
pub const PP_ETRUNC: c_int = -11;
/// No such object.
pub const PP_ENOTFOUND: c_int = -12;
/// Internal error.
pub const PP_EINTERNAL: c_int = -13;

/// Option type: integer.
pub const PP_OPT_INT: c_int = 1;
/// Option type: duration.
pub const PP_OPT_DURATION: c_int = 2;
/// Option type: on/off.
pub const PP_OPT_BOOL: c_int = 3;
/// Option type: one of a list of words.
pub const PP_OPT_ENUM: c_int = 4;
/// Option type: listen address.
pub const PP_OPT_ADDRESS: c_int = 5;
/// Option type: backend address with weight.
pub const PP_OPT_BACKEND: c_int = 6;
/// Option type: text the option checks itself (a path, a status range).
pub const PP_OPT_STRING: c_int = 7;
/// Option type: each set appends one entry (a backend group, a route).
pub const PP_OPT_LIST: c_int = 8;

/// Log level: errors.
pub const PP_LOG_ERROR: c_int = 0;
/// Log level: warnings.
pub const PP_LOG_WARN: c_int = 1;
/// Log level: information.
pub const PP_LOG_INFO: c_int = 2;
/// Log level: debugging detail.
pub const PP_LOG_DEBUG: c_int = 3;

/// Event: listener bound, workers running.
pub const PP_EVENT_PROXY_STARTED: c_int = 1;
/// Event: every worker stopped.
pub const PP_EVENT_PROXY_STOPPED: c_int = 2;
/// Event: connecting to a backend failed after it last worked.
pub const PP_EVENT_BACKEND_DOWN: c_int = 3;
/// Event: a backend connection succeeded after failures.
pub const PP_EVENT_BACKEND_UP: c_int = 4;
/// Event: active health checks marked a backend unhealthy.
pub const PP_EVENT_BACKEND_UNHEALTHY: c_int = 5;
/// Event: active health checks marked a backend healthy again.
pub const PP_EVENT_BACKEND_HEALTHY: c_int = 6;
/// Event: a backend's circuit breaker opened.
pub const PP_EVENT_BREAKER_OPEN: c_int = 7;
/// Event: a breaker's open time passed; probes are admitted.
pub const PP_EVENT_BREAKER_HALF_OPEN: c_int = 8;
/// Event: a probe succeeded; the breaker closed.
pub const PP_EVENT_BREAKER_CLOSED: c_int = 9;
/// Event: a backend was added at runtime.
pub const PP_EVENT_BACKEND_ADDED: c_int = 10;
/// Event: a backend was removed.
pub const PP_EVENT_BACKEND_REMOVED: c_int = 11;
/// Event: a backend is draining.
pub const PP_EVENT_BACKEND_DRAINING: c_int = 12;
/// Event: a drained backend takes requests again.
pub const PP_EVENT_BACKEND_READY: c_int = 13;

/// Proxy state: created, not started.
pub const PP_STATE_CREATED: c_int = 0;
/// Proxy state: running.
pub const PP_STATE_RUNNING: c_int = 1;
/// Proxy state: stopped.
pub const PP_STATE_STOPPED: c_int = 2;

/// `pp_option_info`: one row of the option table.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pp_option_info {
    /// In: `size_of::<pp_option_info>()`; out: bytes filled.
    pub struct_size: usize,
    /// Option name.
    pub name: *const c_char,
    /// A `PP_OPT_*` type.
    pub type_: c_int,
    /// Default as text.
    pub default_text: *const c_char,
    /// Enum choices "a|b|c", else "".
    pub choices: *const c_char,
    /// Lowest accepted value.
    pub min: i64,
    /// Highest accepted value.
    pub max: i64,
    /// One line of help.
    pub help: *const c_char,
}

/// `pp_event`: an event, valid during the callback only.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pp_event {
    /// Size of the struct as the library knows it.
    pub struct_size: usize,
    /// A `PP_EVENT_*` type.
    pub type_: c_int,
    /// Backend index, or -1.
    pub backend_id: c_int,
    /// Backend or listen address.
    pub address: *const c_char,
    /// Why.
    pub reason: *const c_char,
}

mod stats;
pub use stats::*;

/// `pp_latency_kind`: which distribution `pp_proxy_latency` reports.
pub const PP_LATENCY_REQUEST: c_int = 0;
#[allow(missing_docs)]
pub const PP_LATENCY_QUEUE_WAIT: c_int = 1;
#[allow(missing_docs)]
pub const PP_LATENCY_CONNECT: c_int = 2;
/// `PP_LATENCY_TLS_HANDSHAKE` (since 0.3.0).
pub const PP_LATENCY_TLS_HANDSHAKE: c_int = 3;
/// `PP_LATENCY_TLS_BACKEND_HANDSHAKE` (since 0.3.0).
pub const PP_LATENCY_TLS_BACKEND_HANDSHAKE: c_int = 4;

/// `pp_latency`: a latency distribution (microseconds).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
#[allow(missing_docs)]
pub struct pp_latency {
    pub struct_size: usize,
    pub count: u64,
    pub sum_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
}

/// `pp_access_entry`: one finished request (http) or session (tcp).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct pp_access_entry {
    pub struct_size: usize,
    pub worker: c_int,
    pub backend_id: c_int,
    pub backend: *const c_char,
    pub client: *const c_char,
    pub method: *const c_char,
    pub target: *const c_char,
    pub status: c_int,
    pub reused: c_int,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub queue_wait_us: u64,
    pub connect_us: u64,
    pub first_byte_us: u64,
    pub total_us: u64,
    pub reason: *const c_char,
}

/// `pp_access_fn`.
pub type pp_access_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, entry: *const pp_access_entry)>;

/// `pp_request_info`: what a request hook sees.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pp_request_info {
    /// Size of the struct as the library knows it.
    pub struct_size: usize,
    /// The request method.
    pub method: *const c_char,
    /// The request target.
    pub target: *const c_char,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub http_minor: c_int,
    /// The client's "ip:port".
    pub client: *const c_char,
    /// The worker running the hook.
    pub worker: c_int,
    /// How many times the exchange was resumed.
    pub resumes: u32,
    /// The token that resumed it, else 0.
    pub token: u64,
    /// The group a route picked ("" = default).
    pub group: *const c_char,
    /// The target as it will go upstream.
    pub upstream_target: *const c_char,
    /// The Host as the client sent it ("" when none).
    pub host: *const c_char,
}

/// `pp_response_info`: what a response hook sees.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pp_response_info {
    /// Size of the struct as the library knows it.
    pub struct_size: usize,
    /// The response status.
    pub status: c_int,
    /// The request method.
    pub method: *const c_char,
    /// The request target.
    pub target: *const c_char,
    /// The backend that answered.
    pub backend_id: c_int,
}

/// `pp_connect_info`: what a connect hook sees.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pp_connect_info {
    /// Size of the struct as the library knows it.
    pub struct_size: usize,
    /// The client's "ip:port".
    pub client: *const c_char,
    /// The worker running the hook.
    pub worker: c_int,
}

/// `pp_request_hook_fn`.
pub type pp_request_hook_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        ex: *mut pp_exchange,
        info: *const pp_request_info,
    ) -> c_int,
>;
/// `pp_response_hook_fn`.
pub type pp_response_hook_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        ex: *mut pp_exchange,
        info: *const pp_response_info,
    ) -> c_int,
>;
/// `pp_connect_hook_fn`.
pub type pp_connect_hook_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        ex: *mut pp_exchange,
        info: *const pp_connect_info,
    ) -> c_int,
>;

/// `pp_log_fn`.
pub type pp_log_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, level: c_int, message: *const c_char)>;
/// `pp_event_fn`.
pub type pp_event_fn = Option<unsafe extern "C" fn(userdata: *mut c_void, event: *const pp_event)>;

#[allow(missing_docs)]
extern "C" {
    pub fn pp_version() -> c_uint;
    pub fn pp_version_string() -> *const c_char;
    pub fn pp_strerror(code: c_int) -> *const c_char;
    pub fn pp_err_name(code: c_int) -> *const c_char;
    pub fn pp_last_error() -> *const c_char;

    pub fn pp_option_count() -> usize;
    pub fn pp_option_get_info(index: usize, info: *mut pp_option_info) -> c_int;

    pub fn pp_config_new(out: *mut *mut pp_config) -> c_int;
    pub fn pp_config_free(cfg: *mut pp_config);
    pub fn pp_config_set(cfg: *mut pp_config, name: *const c_char, value: *const c_char) -> c_int;
    pub fn pp_config_get(
        cfg: *const pp_config,
        name: *const c_char,
        buf: *mut c_char,
        buflen: usize,
    ) -> c_int;
    pub fn pp_config_add_backend(
        cfg: *mut pp_config,
        address: *const c_char,
        weight: c_int,
    ) -> c_int;
    pub fn pp_config_backend_count(cfg: *const pp_config) -> c_int;
    pub fn pp_config_load_file(cfg: *mut pp_config, path: *const c_char) -> c_int;
    pub fn pp_config_set_log_callback(
        cfg: *mut pp_config,
        f: pp_log_fn,
        userdata: *mut c_void,
        max_level: c_int,
    ) -> c_int;
    pub fn pp_config_set_event_callback(
        cfg: *mut pp_config,
        f: pp_event_fn,
        userdata: *mut c_void,
    ) -> c_int;
    pub fn pp_config_set_access_callback(
        cfg: *mut pp_config,
        f: pp_access_fn,
        userdata: *mut c_void,
    ) -> c_int;

    pub fn pp_config_set_request_hook(
        cfg: *mut pp_config,
        f: pp_request_hook_fn,
        userdata: *mut c_void,
    ) -> c_int;
    pub fn pp_config_set_response_hook(
        cfg: *mut pp_config,
        f: pp_response_hook_fn,
        userdata: *mut c_void,
    ) -> c_int;
    pub fn pp_config_set_connect_hook(
        cfg: *mut pp_config,
        f: pp_connect_hook_fn,
        userdata: *mut c_void,
    ) -> c_int;
    pub fn pp_exchange_field_count(ex: *const pp_exchange) -> c_int;
    pub fn pp_exchange_field(
        ex: *const pp_exchange,
        index: usize,
        name: *mut *const c_char,
        value: *mut *const c_char,
    ) -> c_int;
    pub fn pp_exchange_find_field(ex: *const pp_exchange, name: *const c_char) -> *const c_char;
    pub fn pp_exchange_set_field(
        ex: *mut pp_exchange,
        name: *const c_char,
        value: *const c_char,
    ) -> c_int;
    pub fn pp_exchange_add_field(
        ex: *mut pp_exchange,
        name: *const c_char,
        value: *const c_char,
    ) -> c_int;
    pub fn pp_exchange_remove_field(ex: *mut pp_exchange, name: *const c_char) -> c_int;
    pub fn pp_exchange_set_target(ex: *mut pp_exchange, target: *const c_char) -> c_int;
    pub fn pp_exchange_set_group(ex: *mut pp_exchange, group: *const c_char) -> c_int;
    pub fn pp_exchange_set_backend(ex: *mut pp_exchange, backend_id: c_int) -> c_int;
    pub fn pp_exchange_respond(
        ex: *mut pp_exchange,
        status: c_int,
        fields: *const *const c_char,
        body: *const c_char,
        body_len: usize,
    ) -> c_int;
    pub fn pp_exchange_pause(ex: *mut pp_exchange, token: *mut u64) -> c_int;
    pub fn pp_exchange_resume(proxy: *mut pp_proxy, token: u64) -> c_int;

    pub fn pp_proxy_new(out: *mut *mut pp_proxy, cfg: *const pp_config) -> c_int;
    pub fn pp_proxy_start(proxy: *mut pp_proxy) -> c_int;
    pub fn pp_proxy_stop(proxy: *mut pp_proxy, drain_ms: c_int) -> c_int;
    pub fn pp_proxy_free(proxy: *mut pp_proxy) -> c_int;
    pub fn pp_proxy_state(proxy: *const pp_proxy) -> c_int;
    pub fn pp_proxy_local_address(proxy: *const pp_proxy, buf: *mut c_char, buflen: usize)
        -> c_int;
    pub fn pp_proxy_local_port(proxy: *const pp_proxy) -> c_int;

    pub fn pp_proxy_stats(proxy: *const pp_proxy, out: *mut pp_stats) -> c_int;
    pub fn pp_proxy_worker_count(proxy: *const pp_proxy) -> c_int;
    pub fn pp_proxy_worker_stats(
        proxy: *const pp_proxy,
        index: c_int,
        out: *mut pp_worker_stats,
    ) -> c_int;
    pub fn pp_proxy_backend_count(proxy: *const pp_proxy) -> c_int;
    pub fn pp_proxy_backend_stats(
        proxy: *const pp_proxy,
        index: c_int,
        out: *mut pp_backend_stats,
        addr_buf: *mut c_char,
        addr_len: usize,
    ) -> c_int;
    pub fn pp_proxy_latency(
        proxy: *const pp_proxy,
        kind: c_int,
        worker: c_int,
        out: *mut pp_latency,
    ) -> c_int;
    pub fn pp_proxy_metrics(
        proxy: *const pp_proxy,
        buf: *mut c_char,
        size: usize,
        len: *mut usize,
    ) -> c_int;
    pub fn pp_proxy_admin_port(proxy: *const pp_proxy) -> c_int;
    pub fn pp_proxy_add_backend(
        proxy: *mut pp_proxy,
        address: *const c_char,
        weight: c_int,
    ) -> c_int;
    pub fn pp_proxy_add_backend_spec(proxy: *mut pp_proxy, spec: *const c_char) -> c_int;
    pub fn pp_proxy_reload(proxy: *mut pp_proxy, cfg: *const pp_config) -> c_int;
    pub fn pp_proxy_remove_backend(proxy: *mut pp_proxy, id: c_int) -> c_int;
    pub fn pp_proxy_drain_backend(proxy: *mut pp_proxy, id: c_int, drain: c_int) -> c_int;
    pub fn pp_proxy_set_backend_weight(proxy: *mut pp_proxy, id: c_int, weight: c_int) -> c_int;
}
