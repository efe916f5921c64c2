//! Three hooks in one proxy: routing by a header (X-Version: 2 goes to the v2 group), an auth
//! hook that pauses while another thread checks the token and then resumes, and a response hook
//! that adds a field.
//!
//!     cargo run --example hooks -- V1_ADDR V2_ADDR
//!
//! then, e.g., `curl -H 'Authorization: Bearer good' -H 'X-Version: 2' http://127.0.0.1:PORT/`.

use std::thread;
use std::time::Duration;

use poolproxy::{Config, Proxy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 2 {
        eprintln!("usage: hooks V1_HOST:PORT V2_HOST:PORT");
        std::process::exit(2);
    }
    let mut cfg = Config::new()?;
    cfg.set("mode", "http")?;
    cfg.listen("127.0.0.1:0")?;
    cfg.set("backend", &args[0])?;
    cfg.set("backend", &format!("{},group=v2", args[1]))?;
    cfg.on_request(|e| {
        if e.resumes == 0 {
            // Routing by a header.
            if e.field("X-Version").as_deref() == Some("2") {
                e.set_group("v2")?;
            }
            // Auth: look the token up off the worker thread, then go on.
            let token = e.field("Authorization").unwrap_or_default();
            let r = e.pause()?;
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(5)); // a lookup
                let _ = token; // (a real hook keeps the answer, keyed by r.token())
                let _ = r.resume();
            });
            return Ok(());
        }
        e.set_field("X-Auth-Checked", "yes")
    });
    cfg.on_response(|e| e.set_field("X-Served-By", "poolproxy"));
    let proxy = Proxy::start(&cfg)?;
    println!("listening on {}", proxy.local_addr());
    loop {
        thread::sleep(Duration::from_secs(60));
    }
}
