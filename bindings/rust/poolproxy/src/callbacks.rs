//! The C-to-Rust trampolines. User closures run under `catch_unwind`: a panic never unwinds
//! into C; it is counted and reported on standard error.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use poolproxy_sys as sys;

use crate::{AccessEntry, Event, EventType, LogLevel};

pub(crate) type LogFn = dyn Fn(LogLevel, &str) + Send + Sync + 'static;
pub(crate) type EventFn = dyn Fn(&Event) + Send + Sync + 'static;
pub(crate) type AccessFn = dyn Fn(&AccessEntry) + Send + Sync + 'static;

/// What a running proxy's C side points at. Owned by the `Proxy` (in a `Box`, so its address is
/// stable) and freed only after `pp_proxy_free`, which guarantees no callback runs any more.
pub(crate) struct Callbacks {
    pub(crate) log: Option<std::sync::Arc<LogFn>>,
    pub(crate) event: Option<std::sync::Arc<EventFn>>,
    pub(crate) access: Option<std::sync::Arc<AccessFn>>,
    pub(crate) request: Option<std::sync::Arc<crate::hooks::HookFn>>,
    pub(crate) response: Option<std::sync::Arc<crate::hooks::HookFn>>,
    pub(crate) connect: Option<std::sync::Arc<crate::hooks::HookFn>>,
    pub(crate) gate: std::sync::Arc<crate::hooks::Gate>,
    pub(crate) panics: AtomicUsize,
}

fn text(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the library passes NUL-terminated strings valid for the callback's duration.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn guarded(cb: &Callbacks, kind: &str, f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        cb.panics.fetch_add(1, Ordering::Relaxed);
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic".to_string());
        eprintln!("poolproxy: {kind} callback panicked (caught): {what}");
    }
}

pub(crate) extern "C" fn log_trampoline(ud: *mut c_void, level: c_int, message: *const c_char) {
    // SAFETY: ud is the Callbacks the Proxy registered, alive until after pp_proxy_free.
    let cb = unsafe { &*(ud as *const Callbacks) };
    if let Some(f) = &cb.log {
        guarded(cb, "log", || f(LogLevel::from_raw(level), &text(message)));
    }
}

pub(crate) extern "C" fn event_trampoline(ud: *mut c_void, ev: *const sys::pp_event) {
    // SAFETY: as above; ev is valid for the duration of the call.
    let cb = unsafe { &*(ud as *const Callbacks) };
    let ev = unsafe { &*ev };
    if let Some(f) = &cb.event {
        let event = Event {
            kind: EventType::from_raw(ev.type_),
            backend: if ev.backend_id >= 0 {
                Some(ev.backend_id as usize)
            } else {
                None
            },
            address: text(ev.address),
            reason: text(ev.reason),
        };
        guarded(cb, "event", || f(&event));
    }
}

pub(crate) extern "C" fn access_trampoline(ud: *mut c_void, e: *const sys::pp_access_entry) {
    // SAFETY: ud is the Callbacks the Proxy registered; e is valid for the call.
    let cb = unsafe { &*(ud as *const Callbacks) };
    let e = unsafe { &*e };
    if let Some(f) = &cb.access {
        let entry = AccessEntry {
            worker: e.worker.max(0) as usize,
            backend: if e.backend_id >= 0 {
                Some(e.backend_id as usize)
            } else {
                None
            },
            backend_address: text(e.backend),
            client: text(e.client),
            method: text(e.method),
            target: text(e.target),
            status: e.status.max(0) as u16,
            reused: e.reused != 0,
            bytes_in: e.bytes_in,
            bytes_out: e.bytes_out,
            queue_wait: std::time::Duration::from_micros(e.queue_wait_us),
            connect: std::time::Duration::from_micros(e.connect_us),
            first_byte: std::time::Duration::from_micros(e.first_byte_us),
            total: std::time::Duration::from_micros(e.total_us),
        };
        guarded(cb, "access", || f(&entry));
    }
}
