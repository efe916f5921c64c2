//! A real proxy in front of std-only backends written here: bytes, stats, callbacks, errors.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use poolproxy::{BackendState, Config, ErrorCode, EventType, LatencyKind, LogLevel, Proxy};

/// Echo backend: echoes bytes, passes the half-close back. Counts connections.
fn echo_backend() -> (String, Arc<AtomicUsize>) {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    thread::spawn(move || {
        for conn in ln.incoming() {
            let mut c = match conn {
                Ok(c) => c,
                Err(_) => continue,
            };
            count.fetch_add(1, Ordering::SeqCst);
            thread::spawn(move || {
                let mut buf = [0u8; 16384];
                loop {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if c.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = c.shutdown(Shutdown::Write);
            });
        }
    });
    (addr, accepted)
}

/// Minimal HTTP/1.1 backend: answers every request with its request line, then closes.
fn http_backend() -> String {
    http_backend_named("you asked")
}

/// The same, answering "NAME: request line".
fn http_backend_named(name: &'static str) -> String {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for conn in ln.incoming().flatten() {
            thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    return;
                }
                let mut line = String::new();
                while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                    line.clear();
                }
                let body = format!("{name}: {}", request_line.trim_end());
                let mut c = conn;
                let _ = write!(
                    c,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    addr
}

fn config(backend: &str) -> Config {
    let mut cfg = Config::new().unwrap();
    cfg.listen("127.0.0.1:0")
        .unwrap()
        .workers(2)
        .unwrap()
        .pool_max(8)
        .unwrap()
        .add_backend(backend, 1)
        .unwrap();
    cfg
}

fn wait_for(mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(15);
    while Instant::now() < end {
        if cond() {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
    panic!("condition not reached within 15 s");
}

#[test]
fn bytes_stats_and_callbacks() {
    let (backend, accepted) = echo_backend();
    let events = Arc::new(Mutex::new(Vec::new()));
    let logs = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut cfg = config(&backend);
    cfg.pool_min_idle(2).unwrap();
    let ev = events.clone();
    cfg.on_event(move |e| ev.lock().unwrap().push(e.clone()));
    let lg = logs.clone();
    cfg.on_log(LogLevel::Info, move |_, m| {
        lg.lock().unwrap().push(m.to_string())
    });
    let mut proxy = Proxy::start(&cfg).unwrap();
    drop(cfg); // the proxy copied what it needs
    let addr = proxy.local_addr();

    wait_for(|| proxy.stats().backend_conns_idle == 2);
    wait_for(|| accepted.load(Ordering::SeqCst) == 2); // pre-warmed before any client

    let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + 3) as u8).collect();
    let clients: Vec<_> = (0..10)
        .map(|_| {
            let payload = payload.clone();
            thread::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                let writer = {
                    let mut w = c.try_clone().unwrap();
                    let p = payload.clone();
                    thread::spawn(move || {
                        w.write_all(&p).unwrap();
                        w.shutdown(Shutdown::Write).unwrap();
                    })
                };
                let mut back = Vec::new();
                c.read_to_end(&mut back).unwrap();
                writer.join().unwrap();
                back == payload
            })
        })
        .collect();
    for c in clients {
        assert!(c.join().unwrap(), "echo through the proxy differs");
    }
    wait_for(|| proxy.stats().sessions_finished == 10);
    let st = proxy.stats();
    assert_eq!(st.connections_accepted, 10);
    assert_eq!(st.bytes_client_to_backend, 10 * payload.len() as u64);
    assert_eq!(st.bytes_backend_to_client, 10 * payload.len() as u64);
    assert_eq!(st.pool_hits + st.pool_misses, 10);
    let ws = proxy.worker_stats();
    assert_eq!(ws.len(), 2);
    assert_eq!(ws.iter().map(|w| w.sessions_started).sum::<u64>(), 10);
    let bs = proxy.backend_stats();
    assert_eq!(bs.len(), 1);
    assert_eq!(bs[0].address, backend);
    assert_eq!(bs[0].sessions, 10);
    assert!(bs[0].up);
    // tcp mode: each session is one "request"; the latency histogram saw every one of them.
    assert_eq!(st.requests, 10);
    assert_eq!(bs[0].requests, 10);
    let lat = proxy.latency(LatencyKind::Request, None).unwrap();
    assert_eq!(lat.count, 10);
    assert!(lat.p50_us <= lat.p99_us);
    let metrics = proxy.metrics().unwrap();
    assert!(
        metrics.contains("poolproxy_connections_accepted_total 10\n"),
        "{metrics}"
    );
    assert!(metrics.contains("poolproxy_request_duration_seconds_count 10\n"));
    assert!(proxy.latency(LatencyKind::Connect, Some(99)).is_err());
    // Runtime changes: a second backend added, drained, removed; bad ids refused.
    let id = proxy.add_backend(&backend, 2).unwrap();
    assert_eq!(id, 1);
    proxy.drain_backend(id, true).unwrap();
    proxy.set_backend_weight(0, 3).unwrap();
    proxy.remove_backend(id).unwrap();
    let bs = proxy.backend_stats();
    assert_eq!(bs.len(), 2);
    assert_eq!(bs[0].weight, 3);
    assert_eq!(bs[1].state, BackendState::Removed);
    assert_eq!(
        proxy.remove_backend(id).unwrap_err().code(),
        ErrorCode::State
    );
    assert!(proxy.drain_backend(9, true).is_err());
    assert!(proxy.add_backend("nowhere", 1).is_err());
    assert!(
        proxy.admin_port().is_err(),
        "admin_listen is off by default"
    );

    proxy.stop(Duration::from_secs(2)).unwrap();
    assert!(!proxy.is_running());
    let events = events.lock().unwrap();
    assert_eq!(
        events.first().map(|e| e.kind),
        Some(EventType::ProxyStarted)
    );
    assert_eq!(events.last().map(|e| e.kind), Some(EventType::ProxyStopped));
    let needle = format!("listening on {addr}");
    assert!(
        logs.lock().unwrap().iter().any(|l| l.contains(&needle)),
        "no '{needle}' log line"
    );
}

#[test]
fn access_log_entries() {
    let (backend, _) = echo_backend();
    let entries = Arc::new(Mutex::new(Vec::new()));
    let mut cfg = config(&backend);
    let e = entries.clone();
    cfg.on_access(move |entry| e.lock().unwrap().push(entry.clone()));
    let mut proxy = Proxy::start(&cfg).unwrap();
    for _ in 0..3 {
        let mut c = TcpStream::connect(proxy.local_addr()).unwrap();
        c.write_all(b"12345").unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
    }
    wait_for(|| proxy.stats().sessions_finished == 3);
    proxy.stop(Duration::from_secs(1)).unwrap();
    let entries = entries.lock().unwrap();
    assert_eq!(entries.len(), 3);
    for e in entries.iter() {
        assert_eq!(e.backend, Some(0));
        assert_eq!(e.backend_address, backend);
        assert_eq!((e.bytes_in, e.bytes_out), (5, 5));
        assert!(e.client.starts_with("127.0.0.1:"), "{e:?}");
        assert_eq!(e.status, 0);
    }
}

#[test]
fn http_through_tcp_mode() {
    let backend = http_backend();
    let proxy = Proxy::start(&config(&backend)).unwrap();
    for i in 0..5 {
        let mut c = TcpStream::connect(proxy.local_addr()).unwrap();
        write!(
            c,
            "GET /item/{i} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        c.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(
            response.ends_with(&format!("you asked: GET /item/{i} HTTP/1.1")),
            "{response}"
        );
    }
}

#[test]
fn groups_and_routes() {
    let plain = http_backend_named("plain");
    let api = http_backend_named("api");
    let mut cfg = config(&plain);
    cfg.set("mode", "http").unwrap();
    cfg.set("group", "api lb=least_conn pool_max=4").unwrap();
    cfg.set("backend", &format!("{api},group=api")).unwrap();
    cfg.set(
        "route",
        "host=api.example.com path=/v1/ strip_prefix -> api",
    )
    .unwrap();
    assert_eq!(
        cfg.set("route", "host=x").err().unwrap().code(),
        ErrorCode::BadValue
    );
    let proxy = Proxy::start(&cfg).unwrap();
    let ask = |host: &str, path: &str| {
        let mut c = TcpStream::connect(proxy.local_addr()).unwrap();
        write!(
            c,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        c.read_to_string(&mut response).unwrap();
        response
    };
    let r = ask("api.example.com", "/v1/users");
    assert!(r.ends_with("api: GET /users HTTP/1.1"), "{r}");
    let r = ask("www.example.com", "/v1/users");
    assert!(r.ends_with("plain: GET /v1/users HTTP/1.1"), "{r}");
    assert_eq!(
        proxy
            .add_backend_spec("127.0.0.1:9,group=nope")
            .err()
            .unwrap()
            .code(),
        ErrorCode::BadValue
    );
    let id = proxy
        .add_backend_spec(&format!("{api},group=api,weight=2"))
        .unwrap();
    assert_eq!(id, 2);

    // Reload: a new group and a route to it ahead of the others; a bad one changes nothing.
    let news = http_backend_named("news");
    let mut next = config(&plain);
    next.set("mode", "http").unwrap();
    next.set("group", "api lb=least_conn pool_max=4").unwrap();
    next.set("backend", &format!("{api},group=api")).unwrap();
    next.set("backend", &format!("{news},group=news")).unwrap();
    next.set("route", "path=/news/ -> news").unwrap();
    next.set(
        "route",
        "host=api.example.com path=/v1/ strip_prefix -> api",
    )
    .unwrap();
    proxy.reload(&next).unwrap();
    let r = ask("www.example.com", "/news/today");
    assert!(r.ends_with("news: GET /news/today HTTP/1.1"), "{r}");
    let r = ask("api.example.com", "/v1/users");
    assert!(r.ends_with("api: GET /users HTTP/1.1"), "{r}");
    let mut bad = config(&plain);
    bad.set("mode", "http").unwrap();
    bad.set("route", "-> nowhere").unwrap();
    let e = proxy.reload(&bad).err().unwrap();
    assert_eq!(e.code(), ErrorCode::BadValue);
    assert!(e.to_string().contains("nowhere"), "{e}");
    let r = ask("www.example.com", "/news/today");
    assert!(r.ends_with("news: GET /news/today HTTP/1.1"), "{r}");
}

#[test]
fn backend_down_event_and_failover() {
    let dead = {
        let ln = TcpListener::bind("127.0.0.1:0").unwrap();
        ln.local_addr().unwrap().to_string()
    }; // closed: connecting there is refused
    let (live, _) = echo_backend();
    let downs = Arc::new(Mutex::new(Vec::new()));
    let mut cfg = config(&dead);
    cfg.add_backend(live.as_str(), 1).unwrap();
    let d = downs.clone();
    cfg.on_event(move |e| {
        if e.kind == EventType::BackendDown {
            d.lock().unwrap().push((e.backend, e.address.clone()));
        }
    });
    let proxy = Proxy::start(&cfg).unwrap();
    for _ in 0..6 {
        let mut c = TcpStream::connect(proxy.local_addr()).unwrap();
        c.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
    }
    assert_eq!(*downs.lock().unwrap(), vec![(Some(0), dead)]);
    assert!(!proxy.backend_stats()[0].up);
}

#[test]
fn errors_name_their_cause() {
    let mut cfg = Config::new().unwrap();
    let e = cfg.set("workers", "abc").err().unwrap();
    assert_eq!(e.code(), ErrorCode::BadValue);
    assert!(e.message().contains("option 'workers'"), "{e}");
    assert!(e.to_string().ends_with("(PP_EBADVALUE)"));
    assert_eq!(
        cfg.set("nope", "1").err().unwrap().code(),
        ErrorCode::NoOption
    );
    assert_eq!(
        cfg.add_backend("nonsense", 1).err().unwrap().code(),
        ErrorCode::Address
    );
    assert_eq!(
        cfg.add_backend("127.0.0.1:80", 0).err().unwrap().code(),
        ErrorCode::Invalid
    );
    assert_eq!(
        cfg.set("work\0ers", "1").err().unwrap().code(),
        ErrorCode::Invalid
    );
    assert_eq!(
        Proxy::start(&cfg).err().unwrap().code(),
        ErrorCode::NoBackend
    );
    cfg.queue_timeout(Duration::from_millis(1500)).unwrap();
    assert_eq!(cfg.get("queue_timeout").unwrap(), "1500ms");

    // Port in use.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    cfg.add_backend(taken.local_addr().unwrap(), 1).unwrap();
    cfg.listen(&taken_addr).unwrap();
    let e = Proxy::start(&cfg).err().unwrap();
    assert_eq!(e.code(), ErrorCode::Bind);
    assert!(e.message().contains(&taken_addr), "{e}");

    // A second stop is refused, not a crash.
    cfg.listen("127.0.0.1:0").unwrap();
    let mut p = Proxy::start(&cfg).unwrap();
    p.stop(Duration::ZERO).unwrap();
    assert_eq!(
        p.stop(Duration::ZERO).err().unwrap().code(),
        ErrorCode::State
    );
    assert_eq!(poolproxy::version(), "0.3.0");
}

#[test]
fn panicking_callback_is_caught() {
    let (backend, _) = echo_backend();
    let mut cfg = config(&backend);
    cfg.on_event(|_| panic!("boom"));
    let mut proxy = Proxy::start(&cfg).unwrap();
    let mut c = TcpStream::connect(proxy.local_addr()).unwrap();
    c.write_all(b"still works").unwrap();
    let mut buf = [0u8; 11];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still works");
    drop(c);
    proxy.stop(Duration::from_secs(1)).unwrap();
    assert_eq!(proxy.callback_panics(), 2); // started and stopped
}

#[test]
fn proxy_is_send_and_sync_config_is_send() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Proxy>();
    send::<Config>();
    let (backend, _) = echo_backend();
    let proxy = Arc::new(Proxy::start(&config(&backend)).unwrap());
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let p = proxy.clone();
            thread::spawn(move || {
                (0..100)
                    .map(|_| p.stats().connections_accepted)
                    .sum::<u64>()
            })
        })
        .collect();
    for r in readers {
        assert_eq!(r.join().unwrap(), 0);
    }
}
