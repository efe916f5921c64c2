use std::ffi::CStr;
use std::fmt;
use std::os::raw::c_int;

use poolproxy_sys as sys;

/// What kind of failure an [`Error`] is, from the library's `PP_E…` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// An argument is invalid (`PP_EINVAL`).
    Invalid,
    /// Out of memory (`PP_ENOMEM`).
    NoMemory,
    /// No option by that name (`PP_ENOOPT`).
    NoOption,
    /// An option's value is invalid (`PP_EBADVALUE`).
    BadValue,
    /// Not allowed in the proxy's current state (`PP_ESTATE`).
    State,
    /// An address does not parse (`PP_EADDR`).
    Address,
    /// The listen address cannot be bound, e.g. the port is in use (`PP_EBIND`).
    Bind,
    /// No backend configured (`PP_ENOBACKEND`).
    NoBackend,
    /// A file cannot be read (`PP_EIO`).
    Io,
    /// A system resource (thread, event loop) failed (`PP_ESYS`).
    System,
    /// A buffer was too small (`PP_ETRUNC`).
    Truncated,
    /// No such object (`PP_ENOTFOUND`).
    NotFound,
    /// A bug in the library (`PP_EINTERNAL`).
    Internal,
    /// A code this crate does not know yet.
    Other(i32),
}

impl ErrorCode {
    fn from_raw(code: c_int) -> ErrorCode {
        match code {
            sys::PP_EINVAL => ErrorCode::Invalid,
            sys::PP_ENOMEM => ErrorCode::NoMemory,
            sys::PP_ENOOPT => ErrorCode::NoOption,
            sys::PP_EBADVALUE => ErrorCode::BadValue,
            sys::PP_ESTATE => ErrorCode::State,
            sys::PP_EADDR => ErrorCode::Address,
            sys::PP_EBIND => ErrorCode::Bind,
            sys::PP_ENOBACKEND => ErrorCode::NoBackend,
            sys::PP_EIO => ErrorCode::Io,
            sys::PP_ESYS => ErrorCode::System,
            sys::PP_ETRUNC => ErrorCode::Truncated,
            sys::PP_ENOTFOUND => ErrorCode::NotFound,
            sys::PP_EINTERNAL => ErrorCode::Internal,
            other => ErrorCode::Other(other),
        }
    }
}

/// A failure reported by libpoolproxy: its code and the message naming the cause, e.g.
/// "option 'workers': expected an integer in 0..256, got 'x'".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    raw: i32,
    code: ErrorCode,
    message: String,
}

impl Error {
    /// The error's kind.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The raw negative `PP_E…` value.
    pub fn raw_code(&self) -> i32 {
        self.raw
    }

    /// The library's message for this failure.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Reads the calling thread's last-error text for a failed call that returned `rc`.
    pub(crate) fn last(rc: c_int) -> Error {
        // SAFETY: pp_last_error never returns NULL and the text stays valid until this thread's
        // next call into the library; it is copied at once.
        let message = unsafe { CStr::from_ptr(sys::pp_last_error()) }
            .to_string_lossy()
            .into_owned();
        Error {
            raw: rc,
            code: ErrorCode::from_raw(rc),
            message,
        }
    }

    /// An error a hook returns to fail its exchange (the client gets a 500): code
    /// [`ErrorCode::Internal`], with the hook's message.
    pub fn hook_failed(message: &str) -> Error {
        Error::new(sys::PP_EINTERNAL, message)
    }

    pub(crate) fn new(code: c_int, message: &str) -> Error {
        Error {
            raw: code,
            code: ErrorCode::from_raw(code),
            message: message.to_string(),
        }
    }

    fn name(&self) -> String {
        // SAFETY: pp_err_name returns a static string for any code.
        unsafe { CStr::from_ptr(sys::pp_err_name(self.raw)) }
            .to_string_lossy()
            .into_owned()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.name())
    }
}

impl std::error::Error for Error {}

/// Turns a C return code into a `Result`, reading the last error on failure.
pub(crate) fn check(rc: c_int) -> Result<c_int, Error> {
    if rc < 0 {
        Err(Error::last(rc))
    } else {
        Ok(rc)
    }
}
