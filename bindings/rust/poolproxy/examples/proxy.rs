//! A tcp proxy from the command line, printing its counters every second.
//!
//! ```text
//! cargo run --example proxy -- 127.0.0.1:7000 127.0.0.1:6379 [more backends...] [--seconds N]
//! ```

use std::time::Duration;

use poolproxy::{Config, LogLevel, Proxy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut seconds = 10u64;
    if let Some(i) = args.iter().position(|a| a == "--seconds") {
        seconds = args.get(i + 1).ok_or("--seconds needs a value")?.parse()?;
        args.drain(i..i + 2);
    }
    if args.len() < 2 {
        eprintln!("usage: proxy LISTEN BACKEND [BACKEND...] [--seconds N]");
        std::process::exit(2);
    }
    let mut cfg = Config::new()?;
    cfg.listen(&args[0])?.pool_max(16)?.pool_min_idle(2)?;
    for backend in &args[1..] {
        cfg.add_backend(backend.as_str(), 1)?;
    }
    cfg.on_log(LogLevel::Info, |level, msg| eprintln!("{level:?}: {msg}"));
    cfg.on_event(|e| eprintln!("event: {e:?}"));

    let mut proxy = Proxy::start(&cfg)?;
    println!("listening on {}", proxy.local_addr());
    for _ in 0..seconds {
        std::thread::sleep(Duration::from_secs(1));
        let s = proxy.stats();
        println!(
            "sessions {} active {} backend conns open {} idle {} waiting {}",
            s.sessions_finished,
            s.connections_active,
            s.backend_conns_open,
            s.backend_conns_idle,
            s.queue_waiting
        );
    }
    proxy.stop(Duration::from_secs(5))?;
    Ok(())
}
