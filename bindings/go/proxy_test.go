package poolproxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	poolproxy "github.com/libpoolproxy/libpoolproxy/bindings/go"
)

// startProxy puts a tcp-mode proxy in front of backend and returns it with its URL.
func startProxy(t *testing.T, backend string, tune func(*poolproxy.Config)) (*poolproxy.Proxy, string) {
	t.Helper()
	cfg, err := poolproxy.NewConfig()
	if err != nil {
		t.Fatal(err)
	}
	defer cfg.Close()
	must(t, cfg.Listen("127.0.0.1:0"))
	must(t, cfg.Workers(2))
	must(t, cfg.PoolMax(8))
	must(t, cfg.AddBackend(backend, 1))
	if tune != nil {
		tune(cfg)
	}
	p, err := poolproxy.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, "http://" + p.Addr().String()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func hostPort(u string) string { return strings.TrimPrefix(u, "http://") }

func TestHTTPThroughProxy(t *testing.T) {
	body := strings.Repeat("poolproxy ", 50000) // 500 KB
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %d|%s", r.Method, r.URL.Path, len(in), body)
	}))
	defer backend.Close()

	var mu sync.Mutex
	var events []poolproxy.Event
	var logs []string
	p, url := startProxy(t, hostPort(backend.URL), func(c *poolproxy.Config) {
		must(t, c.PoolMinIdle(2))
		c.OnEvent(func(e poolproxy.Event) { mu.Lock(); events = append(events, e); mu.Unlock() })
		c.OnLog(poolproxy.LogInfo, func(_ poolproxy.LogLevel, m string) { mu.Lock(); logs = append(logs, m); mu.Unlock() })
	})

	// Separate connections (no keep-alive): each request is one tcp session.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	const n = 20
	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := client.Post(fmt.Sprintf("%s/item/%d", url, i), "text/plain", strings.NewReader(strings.Repeat("x", 1000*i)))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			want := fmt.Sprintf("POST /item/%d %d|%s", i, 1000*i, body)
			if resp.StatusCode != 200 || string(got) != want {
				t.Errorf("request %d: status %d, %d bytes (want %d)", i, resp.StatusCode, len(got), len(want))
				return
			}
			ok.Add(1)
		}(i)
	}
	wg.Wait()
	if ok.Load() != n {
		t.Fatalf("%d of %d requests succeeded", ok.Load(), n)
	}

	deadline := time.Now().Add(10 * time.Second)
	var st poolproxy.Stats
	for time.Now().Before(deadline) {
		st, _ = p.Stats()
		if st.SessionsFinished == n {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st.SessionsFinished != n || st.ConnectionsAccepted != n {
		t.Fatalf("stats: %+v", st)
	}
	if st.BytesBackendToClient < uint64(n*len(body)) {
		t.Fatalf("bytes to clients %d < %d", st.BytesBackendToClient, n*len(body))
	}
	ws, err := p.WorkerStats()
	must(t, err)
	if len(ws) != 2 || ws[0].SessionsStarted+ws[1].SessionsStarted != n {
		t.Fatalf("worker stats: %+v", ws)
	}
	bs, err := p.BackendStats()
	must(t, err)
	if len(bs) != 1 || bs[0].Address != hostPort(backend.URL) || bs[0].Sessions != n || !bs[0].Up {
		t.Fatalf("backend stats: %+v", bs)
	}
	// tcp mode: a session counts as one request.
	if st.Requests != n || bs[0].Requests != n {
		t.Fatalf("request counts: proxy %d, backend %d; want %d", st.Requests, bs[0].Requests, n)
	}
	lat, err := p.Latency(poolproxy.LatencyRequest, -1)
	must(t, err)
	if lat.Count != n || lat.P50 > lat.P99 {
		t.Fatalf("latency: %+v", lat)
	}
	metrics, err := p.Metrics()
	must(t, err)
	if want := fmt.Sprintf("poolproxy_connections_accepted_total %d\n", n); !strings.Contains(metrics, want) {
		t.Fatalf("metrics lack %q:\n%s", want, metrics)
	}
	if _, err := p.AdminPort(); err == nil {
		t.Fatal("AdminPort succeeded with admin_listen off")
	}
	id, err := p.AddBackend(hostPort(backend.URL), 2)
	must(t, err)
	must(t, p.DrainBackend(id, true))
	must(t, p.SetBackendWeight(0, 3))
	must(t, p.RemoveBackend(id))
	bs, err = p.BackendStats()
	must(t, err)
	if len(bs) != 2 || bs[1].State != poolproxy.BackendRemoved || bs[0].Weight != 3 {
		t.Fatalf("after runtime changes: %+v", bs)
	}
	if err := p.RemoveBackend(id); !errors.Is(err, poolproxy.ErrState) {
		t.Fatalf("removing twice: %v", err)
	}

	must(t, p.Stop(context.Background()))
	mu.Lock()
	defer mu.Unlock()
	if len(events) < 2 || events[0].Type != poolproxy.EventProxyStarted || events[len(events)-1].Type != poolproxy.EventProxyStopped {
		t.Fatalf("events: %+v", events)
	}
	found := false
	for _, l := range logs {
		found = found || strings.Contains(l, "listening on "+p.Addr().String())
	}
	if !found {
		t.Fatalf("no 'listening on' log line in %q", logs)
	}
}

func TestErrors(t *testing.T) {
	cfg, err := poolproxy.NewConfig()
	must(t, err)
	defer cfg.Close()

	err = cfg.Set("workers", "abc")
	if !errors.Is(err, poolproxy.ErrBadValue) || !strings.Contains(err.Error(), "option 'workers'") {
		t.Fatalf("bad value: %v", err)
	}
	var pe *poolproxy.Error
	if !errors.As(err, &pe) || pe.Code >= 0 || pe.Name != "PP_EBADVALUE" {
		t.Fatalf("errors.As: %#v", pe)
	}
	if err := cfg.Set("nope", "1"); !errors.Is(err, poolproxy.ErrNoOption) {
		t.Fatalf("unknown option: %v", err)
	}
	if err := cfg.AddBackend("not an address", 1); !errors.Is(err, poolproxy.ErrAddress) {
		t.Fatalf("bad address: %v", err)
	}
	if _, err := poolproxy.Start(cfg); !errors.Is(err, poolproxy.ErrNoBackend) {
		t.Fatalf("no backend: %v", err)
	}
	must(t, cfg.QueueTimeout(1500*time.Millisecond))
	if v, _ := cfg.Get("queue_timeout"); v != "1500ms" {
		t.Fatalf("queue_timeout = %q", v)
	}

	// Port in use.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	must(t, cfg.AddBackend("127.0.0.1:9", 1))
	must(t, cfg.Listen(ln.Addr().String()))
	_, err = poolproxy.Start(cfg)
	if !errors.Is(err, poolproxy.ErrBind) || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("port in use: %v", err)
	}

	// Lifecycle misuse is an error, not a crash.
	must(t, cfg.Listen("127.0.0.1:0"))
	p, err := poolproxy.Start(cfg)
	must(t, err)
	must(t, p.Stop(context.Background()))
	if err := p.Stop(context.Background()); !errors.Is(err, poolproxy.ErrState) {
		t.Fatalf("second stop: %v", err)
	}
	must(t, p.Close())
	must(t, p.Close())
	if _, err := p.Stats(); !errors.Is(err, poolproxy.ErrState) {
		t.Fatalf("stats after close: %v", err)
	}
	cfg.Close()
	if err := cfg.Set("workers", "1"); !errors.Is(err, poolproxy.ErrInvalid) {
		t.Fatalf("set on closed config: %v", err)
	}
}

// Stop's context deadline is the drain deadline: a request in flight finishes when it fits in
// the deadline, and is cut when it does not.
func TestStopDrainsUntilDeadline(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "done "+r.URL.Path)
	}))
	defer backend.Close()
	defer close(release)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}

	t.Run("finishes within deadline", func(t *testing.T) {
		p, url := startProxy(t, hostPort(backend.URL), nil)
		result := make(chan string, 1)
		go func() {
			resp, err := client.Get(url + "/fast-then-wait")
			if err != nil {
				result <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			result <- string(b)
		}()
		if got := <-result; got != "done /fast-then-wait" {
			t.Fatalf("got %q", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		must(t, p.Stop(ctx))
		if time.Since(start) > 15*time.Second {
			t.Fatalf("stop with nothing in flight took %v", time.Since(start))
		}
	})

	t.Run("cut at deadline", func(t *testing.T) {
		p, url := startProxy(t, hostPort(backend.URL), nil)
		errc := make(chan error, 1)
		go func() {
			// The backend never answers /slow: the only way this returns is the proxy closing
			// the connection at the drain deadline, which the client sees as an error.
			resp, err := client.Get(url + "/slow")
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		waitFor(t, func() bool { s, _ := p.Stats(); return s.ConnectionsActive == 1 && s.BackendConnsOpen == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		must(t, p.Stop(ctx)) // returns although the backend never answers
		if s, _ := p.Stats(); s.ConnectionsActive != 0 {
			t.Fatalf("still active after the deadline: %+v", s)
		}
		if err := <-errc; err == nil {
			t.Fatal("the request in flight was not cut at the drain deadline")
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not reached within 15 s")
}

// A panicking callback is recovered; the proxy keeps serving.
func TestCallbackPanicDoesNotCrash(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer backend.Close()
	var calls atomic.Int32
	p, url := startProxy(t, hostPort(backend.URL), func(c *poolproxy.Config) {
		c.OnEvent(func(poolproxy.Event) { calls.Add(1); panic("boom") })
	})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	must(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("got %q", b)
	}
	must(t, p.Close())
	if calls.Load() < 2 { // started + stopped, both panicked
		t.Fatalf("event callback ran %d times", calls.Load())
	}
}

func TestAccessLog(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") }))
	defer backend.Close()
	var mu sync.Mutex
	var entries []poolproxy.AccessEntry
	p, url := startProxy(t, hostPort(backend.URL), func(c *poolproxy.Config) {
		c.OnAccess(func(e poolproxy.AccessEntry) { mu.Lock(); entries = append(entries, e); mu.Unlock() })
	})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	for i := 0; i < 3; i++ {
		resp, err := client.Get(url)
		must(t, err)
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	waitFor(t, func() bool { s, _ := p.Stats(); return s.SessionsFinished == 3 })
	must(t, p.Stop(context.Background()))
	mu.Lock()
	defer mu.Unlock()
	if len(entries) != 3 {
		t.Fatalf("%d access entries, want 3", len(entries))
	}
	for _, e := range entries {
		if e.Backend != 0 || e.BackendAddress != hostPort(backend.URL) || e.BytesIn == 0 || e.BytesOut == 0 ||
			!strings.HasPrefix(e.Client, "127.0.0.1:") {
			t.Fatalf("entry %+v", e)
		}
	}
}

func TestGroupsAndRoutes(t *testing.T) {
	named := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s %s", name, r.URL.Path, r.Host)
		}))
	}
	plain, api := named("plain"), named("api")
	defer plain.Close()
	defer api.Close()
	p, url := startProxy(t, hostPort(plain.URL), func(cfg *poolproxy.Config) {
		must(t, cfg.Set("mode", "http"))
		must(t, cfg.Set("group", "api lb=least_conn pool_max=4"))
		must(t, cfg.Set("backend", hostPort(api.URL)+",group=api,host=api.internal"))
		must(t, cfg.Set("route", "header=X-Api:yes -> api"))
		if err := cfg.Set("route", "-> "); !errors.Is(err, poolproxy.ErrBadValue) {
			t.Fatalf("a route without a group: %v", err)
		}
	})
	ask := func(api string) string {
		req, _ := http.NewRequest("GET", url+"/x", nil)
		if api != "" {
			req.Header.Set("X-Api", api)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := ask("yes"); got != "api /x api.internal" {
		t.Fatalf("routed by header: %q", got)
	}
	if got := ask("no"); !strings.HasPrefix(got, "plain /x ") {
		t.Fatalf("not routed: %q", got)
	}
	if _, err := p.AddBackendSpec("127.0.0.1:9,group=nope"); !errors.Is(err, poolproxy.ErrBadValue) {
		t.Fatalf("an unknown group: %v", err)
	}
	if id, err := p.AddBackendSpec(hostPort(api.URL) + ",group=api"); err != nil || id != 2 {
		t.Fatalf("added: %d %v", id, err)
	}

	// Reload: a new group and a route to it; a bad configuration changes nothing.
	news := named("news")
	defer news.Close()
	next, err := poolproxy.NewConfig()
	must(t, err)
	defer next.Close()
	must(t, next.Set("mode", "http"))
	must(t, next.AddBackend(hostPort(plain.URL), 1))
	must(t, next.Set("group", "api lb=least_conn pool_max=4"))
	must(t, next.Set("backend", hostPort(api.URL)+",group=api,host=api.internal"))
	must(t, next.Set("backend", hostPort(news.URL)+",group=news"))
	must(t, next.Set("route", "header=X-Api:news -> news"))
	must(t, next.Set("route", "header=X-Api:yes -> api"))
	must(t, p.Reload(next))
	if got := ask("news"); got != "news /x "+strings.TrimPrefix(url, "http://") {
		t.Fatalf("routed to the group the reload added: %q", got)
	}
	if got := ask("yes"); got != "api /x api.internal" {
		t.Fatalf("the kept route: %q", got)
	}
	bad, err := poolproxy.NewConfig()
	must(t, err)
	defer bad.Close()
	must(t, bad.Set("mode", "http"))
	must(t, bad.AddBackend(hostPort(plain.URL), 1))
	must(t, bad.Set("route", "-> nowhere"))
	if err := p.Reload(bad); !errors.Is(err, poolproxy.ErrBadValue) || !strings.Contains(err.Error(), "nowhere") {
		t.Fatalf("a route to no group: %v", err)
	}
	if got := ask("news"); !strings.HasPrefix(got, "news ") {
		t.Fatalf("unchanged after the refused reload: %q", got)
	}
}
