//! An http proxy with a Rust request hook that reads two fields and sets one, for
//! bench/http_compare.sh (the cost of a Rust hook per request). Not a test.
//!
//!     hookbench LISTEN_PORT BACKEND

use std::thread;
use std::time::Duration;

use poolproxy::{Config, Proxy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 2 {
        eprintln!("usage: hookbench LISTEN_PORT BACKEND");
        std::process::exit(2);
    }
    let mut cfg = Config::new()?;
    cfg.set("mode", "http")?;
    cfg.listen(&format!("127.0.0.1:{}", args[0]))?;
    cfg.set("workers", "1")?;
    cfg.set("pool_max", "64")?;
    cfg.set("add_forwarded", "off")?;
    cfg.set("backend", &args[1])?;
    cfg.on_request(|e| {
        let ok = e.field("User-Agent").is_some() && e.field("Host").is_some();
        e.set_field("X-Checked", if ok { "yes" } else { "no" })
    });
    let proxy = Proxy::start(&cfg)?;
    println!("listening on {}", proxy.local_addr());
    loop {
        thread::sleep(Duration::from_secs(3600)); // SIGTERM ends the process
    }
}
