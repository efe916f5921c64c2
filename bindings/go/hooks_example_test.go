package poolproxy_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	poolproxy "github.com/libpoolproxy/libpoolproxy/bindings/go"
)

// A backend that answers its name, the path and the X-User it was given.
func namedBackend(name string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		fmt.Fprintf(w, "%s %s user=%s", name, r.URL.Path, r.Header.Get("X-User"))
	}))
}

func get(url string, fields map[string]string) (int, string, http.Header) {
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range fields {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func httpProxy(tune func(*poolproxy.Config), backends ...string) (*poolproxy.Proxy, string) {
	cfg, _ := poolproxy.NewConfig()
	defer cfg.Close()
	cfg.Set("mode", "http")
	cfg.Listen("127.0.0.1:0")
	cfg.Workers(2)
	for _, b := range backends {
		cfg.Set("backend", b)
	}
	tune(cfg)
	p, err := poolproxy.Start(cfg)
	if err != nil {
		panic(err)
	}
	return p, "http://" + p.Addr().String()
}

// Route by a header: requests with "X-Version: 2" go to the v2 group.
func ExampleConfig_OnRequest_routing() {
	v1, v2 := namedBackend("v1"), namedBackend("v2")
	defer v1.Close()
	defer v2.Close()
	p, url := httpProxy(func(cfg *poolproxy.Config) {
		cfg.OnRequest(func(e *poolproxy.Exchange) error {
			if v, _ := e.Field("X-Version"); v == "2" {
				return e.SetGroup("v2")
			}
			return nil
		})
	}, strings.TrimPrefix(v1.URL, "http://"), strings.TrimPrefix(v2.URL, "http://")+",group=v2")
	defer p.Close()
	_, a, _ := get(url+"/a", nil)
	_, b, _ := get(url+"/b", map[string]string{"X-Version": "2"})
	fmt.Println(a)
	fmt.Println(b)
	// Output:
	// v1 /a user=
	// v2 /b user=
}

// An auth hook that pauses while another goroutine checks the token, then lets the request on
// (with the user it found) or answers 401.
func ExampleExchange_Pause() {
	be := namedBackend("app")
	defer be.Close()
	var mu sync.Mutex
	users := map[uint64]string{} // resume token -> user found ("" = refused)
	p, url := httpProxy(func(cfg *poolproxy.Config) {
		cfg.OnRequest(func(e *poolproxy.Exchange) error {
			if e.Resumes == 0 {
				token, _ := e.Field("Authorization")
				r, err := e.Pause()
				if err != nil {
					return err
				}
				go func() { // the slow lookup, off the worker thread
					time.Sleep(10 * time.Millisecond)
					mu.Lock()
					users[r.Token()] = map[string]string{"Bearer good": "alice"}[token]
					mu.Unlock()
					r.Resume()
				}()
				return nil
			}
			mu.Lock()
			user := users[e.Token()]
			mu.Unlock()
			if user == "" {
				return e.Respond(401, []poolproxy.Field{{Name: "WWW-Authenticate", Value: "Bearer"}}, []byte("who are you?"))
			}
			return e.SetField("X-User", user)
		})
	}, strings.TrimPrefix(be.URL, "http://"))
	defer p.Close()
	s1, b1, _ := get(url+"/x", map[string]string{"Authorization": "Bearer good"})
	s2, b2, _ := get(url+"/x", map[string]string{"Authorization": "Bearer bad"})
	fmt.Println(s1, b1)
	fmt.Println(s2, b2)
	// Output:
	// 200 app /x user=alice
	// 401 who are you?
}

// A response hook that hides which backend answered and adds a field.
func ExampleConfig_OnResponse() {
	be := namedBackend("app")
	defer be.Close()
	p, url := httpProxy(func(cfg *poolproxy.Config) {
		cfg.OnResponse(func(e *poolproxy.Exchange) error {
			e.RemoveField("X-Backend")
			return e.SetField("X-Served-By", "poolproxy")
		})
	}, strings.TrimPrefix(be.URL, "http://"))
	defer p.Close()
	_, _, h := get(url+"/", nil)
	fmt.Printf("%q %q\n", h.Get("X-Backend"), h.Get("X-Served-By"))
	// Output: "" "poolproxy"
}

func TestHookMisuse(t *testing.T) {
	be := namedBackend("app")
	defer be.Close()
	var mu sync.Mutex
	var kept *poolproxy.Exchange
	resumers := make(chan *poolproxy.Resumer, 1)
	p, url := httpProxy(func(cfg *poolproxy.Config) {
		cfg.Set("response_timeout", "300ms")
		cfg.OnRequest(func(e *poolproxy.Exchange) error {
			mu.Lock()
			kept = e
			mu.Unlock()
			switch e.Target {
			case "/panic":
				panic("a hook bug")
			case "/unknown":
				if err := e.SetGroup("nope"); !errors.Is(err, poolproxy.ErrNotFound) {
					t.Errorf("unknown group: %v", err)
				}
			case "/framing":
				if err := e.SetField("Content-Length", "1"); !errors.Is(err, poolproxy.ErrInvalid) {
					t.Errorf("framing field: %v", err)
				}
			case "/pause":
				r, err := e.Pause()
				if err != nil {
					return err
				}
				resumers <- r
			}
			return nil
		})
	}, strings.TrimPrefix(be.URL, "http://"))
	defer p.Close()
	if s, _, _ := get(url+"/panic", nil); s != 500 {
		t.Fatalf("a panicking hook: %d", s)
	}
	if s, _, _ := get(url+"/unknown", nil); s != 500 {
		t.Fatalf("an unknown group: %d", s)
	}
	if s, _, _ := get(url+"/framing", nil); s != 200 {
		t.Fatalf("after a refused field: %d", s)
	}
	mu.Lock()
	k := kept
	mu.Unlock()
	if _, ok := k.Field("Host"); ok || !errors.Is(k.SetField("a", "b"), poolproxy.ErrState) {
		t.Fatal("an exchange kept past its hook must be refused")
	}
	if s, _, _ := get(url+"/pause", nil); s != 504 { // nobody resumes: response_timeout
		t.Fatalf("a pause nobody resumes: %d", s)
	}
	r := <-resumers
	if err := r.Resume(); !errors.Is(err, poolproxy.ErrState) {
		t.Fatalf("resuming after the exchange ended: %v", err)
	}
	if s, b, _ := get(url+"/ok", nil); s != 200 || !strings.HasPrefix(b, "app /ok") {
		t.Fatalf("still serving: %d %q", s, b)
	}
}

func TestExchangeFromAnotherGoroutine(t *testing.T) {
	be := namedBackend("app")
	defer be.Close()
	errs := make(chan error, 1)
	p, url := httpProxy(func(cfg *poolproxy.Config) {
		cfg.OnRequest(func(e *poolproxy.Exchange) error {
			done := make(chan struct{})
			go func() { // a handle passed to another goroutine: refused, never a crash
				errs <- e.AddField("X-Other", "1")
				close(done)
			}()
			e.Fields()
			e.RemoveField("X-Nothing")
			<-done
			return nil
		})
	}, strings.TrimPrefix(be.URL, "http://"))
	defer p.Close()
	if s, _, _ := get(url+"/", nil); s != 200 {
		t.Fatalf("status %d", s)
	}
	if err := <-errs; !errors.Is(err, poolproxy.ErrState) {
		t.Fatalf("from another goroutine: %v", err)
	}
}

func TestProxyWithHooksIsFinalized(t *testing.T) {
	be := namedBackend("app")
	defer be.Close()
	var addr string
	func() {
		p, _ := httpProxy(func(cfg *poolproxy.Config) {
			cfg.OnRequest(func(e *poolproxy.Exchange) error { return nil })
		}, strings.TrimPrefix(be.URL, "http://"))
		addr = p.Addr().String()
	}()
	// Dropped without Close: the finalizer stops it (nothing the hooks hold keeps it alive).
	for i := 0; i < 200; i++ {
		runtime.GC()
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err != nil {
			return
		} else {
			c.Close()
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("a proxy with a request hook was never finalized")
}
