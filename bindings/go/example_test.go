package poolproxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	poolproxy "github.com/libpoolproxy/libpoolproxy/bindings/go"
)

// An echo backend for the examples.
func echoBackend() net.Listener {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln
}

// Start a tcp proxy with pre-warmed pooled connections in front of a backend.
func ExampleStart() {
	backend := echoBackend()
	defer backend.Close()

	cfg, _ := poolproxy.NewConfig()
	defer cfg.Close()
	cfg.Listen("127.0.0.1:0")
	cfg.PoolMax(16)
	cfg.PoolMinIdle(2)
	cfg.QueueTimeout(2 * time.Second)
	cfg.AddBackend(backend.Addr().String(), 1)

	p, err := poolproxy.Start(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	c, _ := net.Dial("tcp", p.Addr().String())
	c.Write([]byte("hello"))
	buf := make([]byte, 5)
	io.ReadFull(c, buf)
	c.Close()
	fmt.Println(string(buf))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.Stop(ctx) // drain for at most 5 s
	// Output: hello
}

// Errors carry the library's code and message; errors.Is matches the sentinels.
func ExampleConfig_Set() {
	cfg, _ := poolproxy.NewConfig()
	defer cfg.Close()
	err := cfg.Set("pool_max", "lots")
	fmt.Println(err)
	// Output: poolproxy: option 'pool_max': expected an integer in 0..1000000, got 'lots' (PP_EBADVALUE)
}
