//! Hooks: closures that steer each request (http mode) or connection (tcp mode) on the
//! proxy's worker threads. They run under `catch_unwind`: a panic answers the client 500 (closes
//! a tcp connection) and the worker goes on serving.

use std::ffi::CStr;
use std::marker::PhantomData;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::{Arc, RwLock};

use poolproxy_sys as sys;

use crate::callbacks::Callbacks;
use crate::error::check;
use crate::{cstring, Error};

pub(crate) type HookFn = dyn Fn(&mut Exchange<'_>) -> Result<(), Error> + Send + Sync + 'static;

/// The running proxy as a [`Resumer`] reaches it: null once the proxy is dropped, so that a
/// resume that comes later fails instead of touching freed memory.
pub(crate) struct Gate {
    pub(crate) raw: RwLock<*mut sys::pp_proxy>,
}
// SAFETY: the pointer is only used for pp_exchange_resume, documented as safe from any thread,
// and only while the read lock shows it live (Drop for Proxy nulls it under the write lock first).
unsafe impl Send for Gate {}
// SAFETY: as above.
unsafe impl Sync for Gate {}

/// Which hook an [`Exchange`] is given to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// A request head arrived (http mode).
    Request,
    /// A backend's final response head arrived (http mode).
    Response,
    /// A client connected (tcp mode).
    Connect,
}

/// What a hook steers. It lives only during the hook call (the borrow ends with it); a paused
/// request is resumed with the [`Resumer`] that [`Exchange::pause`] gives.
pub struct Exchange<'a> {
    raw: *mut sys::pp_exchange,
    gate: &'a Arc<Gate>,
    /// Which hook this is.
    pub kind: HookKind,
    /// The request's method (request and response hooks).
    pub method: String,
    /// The request's target: as the client sent it (request hook), as sent upstream (response).
    pub target: String,
    /// The client's `ip:port` (request and connect hooks).
    pub client: String,
    /// The response's status (response hook).
    pub status: u16,
    /// The backend group a route picked ("" = the default group; request hook).
    pub group: String,
    /// 0 at first; n when the request hook runs again after the n-th resume.
    pub resumes: u32,
    /// After a resume: the token of the [`Resumer`] that resumed it; else 0.
    pub token: u64,
    /// The target as it will go upstream (a route's `strip_prefix`, an earlier `set_target`).
    pub upstream_target: String,
    /// The Host as the client sent it (the head's Host is as it goes upstream).
    pub host: String,
    _call: PhantomData<&'a mut ()>,
}

fn text(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the library's strings are NUL-terminated and valid during the hook call.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

impl Exchange<'_> {
    /// The first value of the field `name` (case-insensitively).
    pub fn field(&self, name: &str) -> Option<String> {
        let n = cstring(name, "field name").ok()?;
        // SAFETY: raw is live during the call; n is a valid C string.
        let v = unsafe { sys::pp_exchange_find_field(self.raw, n.as_ptr()) };
        if v.is_null() {
            None
        } else {
            Some(text(v))
        }
    }

    /// The head's fields in order (the request's, or the response's).
    pub fn fields(&self) -> Vec<(String, String)> {
        // SAFETY: raw is live during the call.
        let n = unsafe { sys::pp_exchange_field_count(self.raw) }.max(0) as usize;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let (mut name, mut value) = (ptr::null(), ptr::null());
            // SAFETY: as above; the out pointers are valid.
            if unsafe { sys::pp_exchange_field(self.raw, i, &mut name, &mut value) } == 0 {
                out.push((text(name), text(value)));
            }
        }
        out
    }

    /// Sets a field: the first of that name changed and the others removed, or added. The
    /// framing and hop-by-hop fields are refused ([`crate::ErrorCode::Invalid`]).
    pub fn set_field(&mut self, name: &str, value: &str) -> Result<(), Error> {
        let (n, v) = (cstring(name, "field name")?, cstring(value, "field value")?);
        // SAFETY: raw is live; n and v outlive the call.
        check(unsafe { sys::pp_exchange_set_field(self.raw, n.as_ptr(), v.as_ptr()) }).map(|_| ())
    }

    /// Adds a field after the others.
    pub fn add_field(&mut self, name: &str, value: &str) -> Result<(), Error> {
        let (n, v) = (cstring(name, "field name")?, cstring(value, "field value")?);
        // SAFETY: as above.
        check(unsafe { sys::pp_exchange_add_field(self.raw, n.as_ptr(), v.as_ptr()) }).map(|_| ())
    }

    /// Removes every field named `name` ([`crate::ErrorCode::NotFound`] when there was none).
    pub fn remove_field(&mut self, name: &str) -> Result<(), Error> {
        let n = cstring(name, "field name")?;
        // SAFETY: as above.
        check(unsafe { sys::pp_exchange_remove_field(self.raw, n.as_ptr()) }).map(|_| ())
    }

    /// The target sent upstream (request hook).
    pub fn set_target(&mut self, target: &str) -> Result<(), Error> {
        let t = cstring(target, "target")?;
        // SAFETY: as above.
        check(unsafe { sys::pp_exchange_set_target(self.raw, t.as_ptr()) }).map(|_| ())
    }

    /// The backend group (request and connect hooks); an unknown one answers 500 (closes a tcp
    /// connection) and returns [`crate::ErrorCode::NotFound`].
    pub fn set_group(&mut self, group: &str) -> Result<(), Error> {
        let g = cstring(group, "group")?;
        // SAFETY: as above.
        check(unsafe { sys::pp_exchange_set_group(self.raw, g.as_ptr()) }).map(|_| ())
    }

    /// This backend only (request hook).
    pub fn set_backend(&mut self, id: usize) -> Result<(), Error> {
        let id = c_int::try_from(id).unwrap_or(c_int::MAX);
        // SAFETY: as above.
        check(unsafe { sys::pp_exchange_set_backend(self.raw, id) }).map(|_| ())
    }

    /// Answers the client now (request hook); no backend is asked, the connection closes after.
    pub fn respond(
        &mut self,
        status: u16,
        fields: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), Error> {
        let mut owned = Vec::with_capacity(2 * fields.len());
        for (n, v) in fields {
            owned.push(cstring(n, "field name")?);
            owned.push(cstring(v, "field value")?);
        }
        let mut ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(ptr::null());
        // SAFETY: raw is live; ptrs (and the strings they point at) and body outlive the call.
        check(unsafe {
            sys::pp_exchange_respond(
                self.raw,
                c_int::from(status),
                ptrs.as_ptr(),
                body.as_ptr() as *const c_char,
                body.len(),
            )
        })
        .map(|_| ())
    }

    /// Pauses the request when the hook returns, until the [`Resumer`] resumes it (from any
    /// thread) or `response_timeout` passes (504).
    pub fn pause(&mut self) -> Result<Resumer, Error> {
        let mut token = 0u64;
        // SAFETY: raw is live; token is writable.
        check(unsafe { sys::pp_exchange_pause(self.raw, &mut token) })?;
        Ok(Resumer {
            gate: self.gate.clone(),
            token,
        })
    }
}

/// Resumes a paused request once, from any thread. It stays safe to use after the exchange
/// ended or the proxy was dropped: then [`Resumer::resume`] fails with
/// [`crate::ErrorCode::State`].
#[derive(Clone)]
pub struct Resumer {
    gate: Arc<Gate>,
    token: u64,
}

impl Resumer {
    /// The pause's token (the request hook sees it again in [`Exchange::token`]).
    pub fn token(&self) -> u64 {
        self.token
    }

    /// The request goes on: its request hook runs again on its worker.
    pub fn resume(&self) -> Result<(), Error> {
        let raw = self.gate.raw.read().unwrap_or_else(|e| e.into_inner());
        if raw.is_null() {
            return Err(Error::new(sys::PP_ESTATE, "the proxy was dropped"));
        }
        // SAFETY: the read lock keeps the proxy from being freed meanwhile.
        check(unsafe { sys::pp_exchange_resume(*raw, self.token) }).map(|_| ())
    }
}

fn run(cb: &Callbacks, f: &Option<Arc<HookFn>>, kind: &str, ex: &mut Exchange<'_>) -> c_int {
    let f = match f {
        Some(f) => f,
        None => return 0,
    };
    match catch_unwind(AssertUnwindSafe(|| f(ex))) {
        Ok(Ok(())) => 0,
        Ok(Err(_)) => -1,
        Err(_) => {
            cb.panics.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            eprintln!("poolproxy: {kind} hook panicked (caught): the exchange failed");
            -1
        }
    }
}

fn exchange(raw: *mut sys::pp_exchange, gate: &Arc<Gate>, kind: HookKind) -> Exchange<'_> {
    Exchange {
        raw,
        gate,
        kind,
        method: String::new(),
        target: String::new(),
        client: String::new(),
        status: 0,
        group: String::new(),
        resumes: 0,
        token: 0,
        upstream_target: String::new(),
        host: String::new(),
        _call: PhantomData,
    }
}

pub(crate) extern "C" fn request_trampoline(
    ud: *mut c_void,
    ex: *mut sys::pp_exchange,
    info: *const sys::pp_request_info,
) -> c_int {
    // SAFETY: ud is the Callbacks the Proxy registered (alive until after pp_proxy_free); info
    // is valid for the call.
    let (cb, info) = unsafe { (&*(ud as *const Callbacks), &*info) };
    let mut e = exchange(ex, &cb.gate, HookKind::Request);
    e.method = text(info.method);
    e.target = text(info.target);
    e.client = text(info.client);
    e.group = text(info.group);
    e.resumes = info.resumes;
    e.token = info.token;
    e.upstream_target = text(info.upstream_target);
    e.host = text(info.host);
    run(cb, &cb.request, "request", &mut e)
}

pub(crate) extern "C" fn response_trampoline(
    ud: *mut c_void,
    ex: *mut sys::pp_exchange,
    info: *const sys::pp_response_info,
) -> c_int {
    // SAFETY: as above.
    let (cb, info) = unsafe { (&*(ud as *const Callbacks), &*info) };
    let mut e = exchange(ex, &cb.gate, HookKind::Response);
    e.method = text(info.method);
    e.target = text(info.target);
    e.status = u16::try_from(info.status).unwrap_or(0);
    run(cb, &cb.response, "response", &mut e)
}

pub(crate) extern "C" fn connect_trampoline(
    ud: *mut c_void,
    ex: *mut sys::pp_exchange,
    info: *const sys::pp_connect_info,
) -> c_int {
    // SAFETY: as above.
    let (cb, info) = unsafe { (&*(ud as *const Callbacks), &*info) };
    let mut e = exchange(ex, &cb.gate, HookKind::Connect);
    e.client = text(info.client);
    run(cb, &cb.connect, "connect", &mut e)
}
