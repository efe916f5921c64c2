// Package poolproxy embeds libpoolproxy, a pooled, worker-balanced proxy, in a Go program.
//
// The proxy runs on its own threads (one event loop per worker) inside the process; this
// package configures it, starts and stops it, reads its statistics and receives its log lines
// and events as Go callbacks.
//
//	cfg, _ := poolproxy.NewConfig()
//	defer cfg.Close()
//	cfg.Set("listen", "127.0.0.1:7000")
//	cfg.AddBackend("127.0.0.1:6379", 1)
//	p, err := poolproxy.Start(cfg)
//	if err != nil { ... }
//	defer p.Close()
//
// The library is found with pkg-config (package "poolproxy"): install libpoolproxy-dev, or point
// PKG_CONFIG_PATH at a build tree's pkgconfig directory.
//
// Callbacks run on the proxy's threads, possibly concurrently; they must not block. A panic in a
// callback is recovered and reported on standard error, never crashing the process.
package poolproxy
