//! Hooks through real sockets: routing by a header, an auth hook that pauses and is resumed
//! from another thread, a response field, and misuse (a panicking hook, a resume too many, a
//! resume after the proxy is gone).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use poolproxy::{Config, Error, ErrorCode, Proxy, Resumer};

/// An HTTP/1.1 backend answering "NAME TARGET user=X-User", with a field X-Backend: NAME.
fn backend(name: &'static str) -> String {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for conn in ln.incoming().flatten() {
            thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut c = conn;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let target = line.split(' ').nth(1).unwrap_or("").to_string();
                    let mut user = String::new();
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h == "\r\n" {
                            break;
                        }
                        if let Some(v) = h.strip_prefix("X-User: ") {
                            user = v.trim_end().to_string();
                        }
                    }
                    let body = format!("{name} {target} user={user}");
                    let _ = write!(
                        c,
                        "HTTP/1.1 200 OK\r\nX-Backend: {name}\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                }
            });
        }
    });
    addr
}

fn get(proxy: &Proxy, target: &str, fields: &str) -> String {
    let mut c = TcpStream::connect(proxy.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(
        c,
        "GET {target} HTTP/1.1\r\nHost: t\r\n{fields}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    out
}

fn config(backends: &[String]) -> Config {
    let mut cfg = Config::new().unwrap();
    cfg.set("mode", "http").unwrap();
    cfg.listen("127.0.0.1:0").unwrap().workers(2).unwrap();
    for b in backends {
        cfg.set("backend", b).unwrap();
    }
    cfg
}

#[test]
fn routing_by_header_and_response_field() {
    let v1 = backend("v1");
    let v2 = backend("v2");
    let mut cfg = config(&[v1, format!("{v2},group=v2")]);
    cfg.on_request(|e| {
        if e.field("X-Version").as_deref() == Some("2") {
            e.set_group("v2")?;
        }
        Ok(())
    });
    cfg.on_response(|e| {
        e.remove_field("X-Backend")?;
        e.set_field("X-Served-By", "poolproxy")
    });
    let proxy = Proxy::start(&cfg).unwrap();
    let a = get(&proxy, "/a", "");
    let b = get(&proxy, "/b", "X-Version: 2\r\n");
    assert!(a.ends_with("v1 /a user="), "{a}");
    assert!(b.ends_with("v2 /b user="), "{b}");
    assert!(
        a.contains("X-Served-By: poolproxy\r\n") && !a.contains("X-Backend"),
        "{a}"
    );
}

#[test]
fn auth_hook_pauses_and_resumes_from_another_thread() {
    let app = backend("app");
    let mut cfg = config(&[app]);
    let users: Arc<Mutex<HashMap<u64, String>>> = Arc::default();
    let found = users.clone();
    cfg.on_request(move |e| {
        if e.resumes == 0 {
            let token = e.field("Authorization").unwrap_or_default();
            let r: Resumer = e.pause()?;
            let users = users.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(10)); // the slow lookup, off the worker
                let user = if token == "Bearer good" { "alice" } else { "" };
                users.lock().unwrap().insert(r.token(), user.to_string());
                r.resume().unwrap();
                assert_eq!(r.resume().unwrap_err().code(), ErrorCode::State); // once only
            });
            return Ok(());
        }
        let user = found
            .lock()
            .unwrap()
            .get(&e.token)
            .cloned()
            .unwrap_or_default();
        if user.is_empty() {
            return e.respond(401, &[("WWW-Authenticate", "Bearer")], b"who are you?");
        }
        e.set_field("X-User", &user)
    });
    let proxy = Proxy::start(&cfg).unwrap();
    let ok = get(&proxy, "/x", "Authorization: Bearer good\r\n");
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.ends_with("app /x user=alice"),
        "{ok}"
    );
    let no = get(&proxy, "/x", "Authorization: Bearer bad\r\n");
    assert!(
        no.starts_with("HTTP/1.1 401") && no.ends_with("who are you?"),
        "{no}"
    );
}

#[test]
fn misuse_is_contained() {
    let app = backend("app");
    let mut cfg = config(&[app]);
    cfg.set("response_timeout", "300ms").unwrap();
    let (tx, rx) = mpsc::channel::<Resumer>();
    let tx = Mutex::new(tx);
    cfg.on_request(move |e| match e.target.as_str() {
        "/panic" => panic!("a hook bug"),
        "/err" => Err(Error::hook_failed("no")),
        "/unknown" => {
            assert_eq!(e.set_group("nope").unwrap_err().code(), ErrorCode::NotFound);
            Ok(())
        }
        "/framing" => {
            assert_eq!(
                e.set_field("Transfer-Encoding", "chunked")
                    .unwrap_err()
                    .code(),
                ErrorCode::Invalid
            );
            Ok(())
        }
        "/pause" => {
            tx.lock().unwrap().send(e.pause()?).unwrap();
            Ok(())
        }
        _ => Ok(()),
    });
    let proxy = Proxy::start(&cfg).unwrap();
    assert!(get(&proxy, "/panic", "").starts_with("HTTP/1.1 500"));
    assert!(get(&proxy, "/err", "").starts_with("HTTP/1.1 500"));
    assert!(get(&proxy, "/unknown", "").starts_with("HTTP/1.1 500"));
    assert!(get(&proxy, "/framing", "").starts_with("HTTP/1.1 200"));
    assert!(get(&proxy, "/pause", "").starts_with("HTTP/1.1 504")); // nobody resumed it
    let r = rx.recv().unwrap();
    assert_eq!(r.resume().unwrap_err().code(), ErrorCode::State); // it ended
    assert!(get(&proxy, "/ok", "").ends_with("app /ok user="));
    let late = r;
    drop(proxy);
    assert_eq!(late.resume().unwrap_err().code(), ErrorCode::State); // the proxy is gone
    fn send<T: Send + Sync>() {}
    send::<Resumer>();
}
