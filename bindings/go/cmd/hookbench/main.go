// Command hookbench is an http proxy with a Go request hook that reads two fields and sets
// one, for bench/http_compare.sh (the cost of a Go hook per request). Not a test.
//
//	hookbench LISTEN_PORT BACKEND
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	poolproxy "github.com/libpoolproxy/libpoolproxy/bindings/go"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: hookbench LISTEN_PORT BACKEND")
		os.Exit(2)
	}
	cfg, err := poolproxy.NewConfig()
	if err != nil {
		panic(err)
	}
	for _, kv := range [][2]string{{"mode", "http"}, {"listen", "127.0.0.1:" + os.Args[1]}, {"workers", "1"},
		{"pool_max", "64"}, {"add_forwarded", "off"}, {"backend", os.Args[2]}} {
		if err := cfg.Set(kv[0], kv[1]); err != nil {
			panic(err)
		}
	}
	cfg.OnRequest(func(e *poolproxy.Exchange) error {
		_, a := e.Field("User-Agent")
		_, h := e.Field("Host")
		v := "no"
		if a && h {
			v = "yes"
		}
		return e.SetField("X-Checked", v)
	})
	p, err := poolproxy.Start(cfg)
	if err != nil {
		panic(err)
	}
	fmt.Println("listening on", p.Addr())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
	p.Close()
}
