//! Proves the Rust declarations match poolproxy.h: a C program, compiled here with the system C
//! compiler against the real header, prints every struct's size and field offsets and every
//! constant; the test compares them with what Rust computes. A field missing on either side
//! shows up as a size mismatch.

use poolproxy_sys::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::mem::{size_of, MaybeUninit};
use std::process::Command;

// offset_of! without std's (newer than our minimum Rust) macro.
macro_rules! offset {
    ($t:ty, $f:ident) => {{
        let u = MaybeUninit::<$t>::uninit();
        let base = u.as_ptr() as usize;
        // SAFETY: only the field's address is computed; nothing is read.
        let field = unsafe { std::ptr::addr_of!((*u.as_ptr()).$f) } as usize;
        field - base
    }};
}

/// One struct as Rust lays it out: (C name, [(C field, Rust offset)], Rust size).
type StructLayout = (&'static str, Vec<(&'static str, usize)>, usize);
/// A constant: (C name, Rust value).
type Constant = (&'static str, i64);

// (C struct name, [(C field, Rust offset)], Rust size)
macro_rules! layout {
    ($t:ident { $($f:ident $(as $cf:ident)?),* $(,)? }) => {
        (stringify!($t), vec![$((layout!(@name $f $($cf)?), offset!($t, $f))),*], size_of::<$t>())
    };
    (@name $f:ident) => { stringify!($f) };
    (@name $f:ident $cf:ident) => { stringify!($cf) };
}

// The stats structs' fields, generated from the header's tables (scripts/gen-stats-bindings.py).
include!("layout/stats.rs");

fn rust_side() -> (Vec<StructLayout>, Vec<Constant>) {
    let mut structs = vec![
        layout!(pp_option_info { struct_size, name, type_ as type, default_text, choices, min, max, help }),
        layout!(pp_event { struct_size, type_ as type, backend_id, address, reason }),
        layout!(pp_request_info {
            struct_size,
            method,
            target,
            http_minor,
            client,
            worker,
            resumes,
            token,
            group
        }),
        layout!(pp_response_info {
            struct_size,
            status,
            method,
            target,
            backend_id
        }),
        layout!(pp_connect_info {
            struct_size,
            client,
            worker
        }),
        layout!(pp_access_entry {
            struct_size,
            worker,
            backend_id,
            backend,
            client,
            method,
            target,
            status,
            reused,
            bytes_in,
            bytes_out,
            queue_wait_us,
            connect_us,
            first_byte_us,
            total_us,
            reason
        }),
        layout!(pp_latency {
            struct_size,
            count,
            sum_us,
            p50_us,
            p90_us,
            p99_us,
            p999_us
        }),
    ];
    structs.extend(stats_layouts());
    let consts: Vec<Constant> = vec![
        ("PP_VERSION_MAJOR", PP_VERSION_MAJOR as i64),
        ("PP_VERSION_MINOR", PP_VERSION_MINOR as i64),
        ("PP_VERSION_PATCH", PP_VERSION_PATCH as i64),
        ("PP_OK", PP_OK as i64),
        ("PP_EINVAL", PP_EINVAL as i64),
        ("PP_ENOMEM", PP_ENOMEM as i64),
        ("PP_ENOOPT", PP_ENOOPT as i64),
        ("PP_EBADVALUE", PP_EBADVALUE as i64),
        ("PP_ESTATE", PP_ESTATE as i64),
        ("PP_EADDR", PP_EADDR as i64),
        ("PP_EBIND", PP_EBIND as i64),
        ("PP_ENOBACKEND", PP_ENOBACKEND as i64),
        ("PP_EIO", PP_EIO as i64),
        ("PP_ESYS", PP_ESYS as i64),
        ("PP_ETRUNC", PP_ETRUNC as i64),
        ("PP_ENOTFOUND", PP_ENOTFOUND as i64),
        ("PP_EINTERNAL", PP_EINTERNAL as i64),
        ("PP_OPT_INT", PP_OPT_INT as i64),
        ("PP_OPT_DURATION", PP_OPT_DURATION as i64),
        ("PP_OPT_BOOL", PP_OPT_BOOL as i64),
        ("PP_OPT_ENUM", PP_OPT_ENUM as i64),
        ("PP_OPT_ADDRESS", PP_OPT_ADDRESS as i64),
        ("PP_OPT_BACKEND", PP_OPT_BACKEND as i64),
        ("PP_OPT_STRING", PP_OPT_STRING as i64),
        ("PP_OPT_LIST", PP_OPT_LIST as i64),
        ("PP_LOG_ERROR", PP_LOG_ERROR as i64),
        ("PP_LOG_WARN", PP_LOG_WARN as i64),
        ("PP_LOG_INFO", PP_LOG_INFO as i64),
        ("PP_LOG_DEBUG", PP_LOG_DEBUG as i64),
        ("PP_LATENCY_REQUEST", PP_LATENCY_REQUEST as i64),
        ("PP_LATENCY_QUEUE_WAIT", PP_LATENCY_QUEUE_WAIT as i64),
        ("PP_LATENCY_CONNECT", PP_LATENCY_CONNECT as i64),
        ("PP_LATENCY_TLS_HANDSHAKE", PP_LATENCY_TLS_HANDSHAKE as i64),
        (
            "PP_LATENCY_TLS_BACKEND_HANDSHAKE",
            PP_LATENCY_TLS_BACKEND_HANDSHAKE as i64,
        ),
        ("PP_EVENT_PROXY_STARTED", PP_EVENT_PROXY_STARTED as i64),
        ("PP_EVENT_PROXY_STOPPED", PP_EVENT_PROXY_STOPPED as i64),
        ("PP_EVENT_BACKEND_DOWN", PP_EVENT_BACKEND_DOWN as i64),
        ("PP_EVENT_BACKEND_UP", PP_EVENT_BACKEND_UP as i64),
        (
            "PP_EVENT_BACKEND_UNHEALTHY",
            PP_EVENT_BACKEND_UNHEALTHY as i64,
        ),
        ("PP_EVENT_BACKEND_HEALTHY", PP_EVENT_BACKEND_HEALTHY as i64),
        ("PP_EVENT_BREAKER_OPEN", PP_EVENT_BREAKER_OPEN as i64),
        (
            "PP_EVENT_BREAKER_HALF_OPEN",
            PP_EVENT_BREAKER_HALF_OPEN as i64,
        ),
        ("PP_EVENT_BREAKER_CLOSED", PP_EVENT_BREAKER_CLOSED as i64),
        ("PP_EVENT_BACKEND_ADDED", PP_EVENT_BACKEND_ADDED as i64),
        ("PP_EVENT_BACKEND_REMOVED", PP_EVENT_BACKEND_REMOVED as i64),
        (
            "PP_EVENT_BACKEND_DRAINING",
            PP_EVENT_BACKEND_DRAINING as i64,
        ),
        ("PP_EVENT_BACKEND_READY", PP_EVENT_BACKEND_READY as i64),
        ("PP_STATE_CREATED", PP_STATE_CREATED as i64),
        ("PP_STATE_RUNNING", PP_STATE_RUNNING as i64),
        ("PP_STATE_STOPPED", PP_STATE_STOPPED as i64),
    ];
    (structs, consts)
}

fn c_side(structs: &[StructLayout], consts: &[Constant]) -> BTreeMap<String, i64> {
    let mut src = String::from(
        "#include <poolproxy.h>\n#include <stddef.h>\n#include <stdio.h>\nint main(void) {\n",
    );
    for (s, fields, _) in structs {
        writeln!(src, "  printf(\"{s} %zu\\n\", sizeof({s}));").unwrap();
        for (f, _) in fields {
            writeln!(src, "  printf(\"{s}.{f} %zu\\n\", offsetof({s}, {f}));").unwrap();
        }
    }
    for (c, _) in consts {
        writeln!(src, "  printf(\"{c} %lld\\n\", (long long)({c}));").unwrap();
    }
    src += "  return 0;\n}\n";

    let dir = std::env::temp_dir().join(format!("pp-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c_file = dir.join("layout.c");
    let exe = dir.join("layout");
    std::fs::write(&c_file, src).unwrap();
    let cflags = Command::new("pkg-config")
        .args(["--cflags", "poolproxy"])
        .output()
        .expect("pkg-config runs");
    assert!(
        cflags.status.success(),
        "pkg-config --cflags poolproxy failed"
    );
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = Command::new(cc)
        .args(String::from_utf8_lossy(&cflags.stdout).split_whitespace())
        .arg(&c_file)
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("the C compiler runs");
    assert!(status.success(), "compiling the layout probe failed");
    let out = Command::new(&exe).output().expect("the layout probe runs");
    std::fs::remove_dir_all(&dir).ok();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn declarations_match_the_header() {
    let (structs, consts) = rust_side();
    let c = c_side(&structs, &consts);
    let mut mismatches = Vec::new();
    for (s, fields, size) in &structs {
        if c[*s] != *size as i64 {
            mismatches.push(format!("sizeof({s}): C {} vs Rust {size}", c[*s]));
        }
        for (f, off) in fields {
            let key = format!("{s}.{f}");
            if c[&key] != *off as i64 {
                mismatches.push(format!("offsetof({s}, {f}): C {} vs Rust {off}", c[&key]));
            }
        }
    }
    for (name, v) in &consts {
        if c[*name] != *v {
            mismatches.push(format!("{name}: C {} vs Rust {v}", c[*name]));
        }
    }
    assert!(
        mismatches.is_empty(),
        "poolproxy-sys disagrees with poolproxy.h:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn linked_library_answers() {
    // SAFETY: pp_version takes no argument and returns a plain integer.
    let v = unsafe { pp_version() };
    assert_eq!(v >> 16, PP_VERSION_MAJOR);
}
