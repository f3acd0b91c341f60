package hooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckURLRefuses(t *testing.T) {
	res := newResolver("internal.example", "127.0.0.1")
	res.set("mixed.example", "93.184.216.34", "10.0.0.7")
	g := NewGuard(nil, []string{"0.0.0.0:8080"}, res)
	tests := []struct {
		url, msg string
	}{
		{"http://127.0.0.1/", "127.0.0.1 is a loopback address"},
		{"http://10.0.0.1/", "10.0.0.1 is a private address (RFC 1918, RFC 4193)"},
		{"http://192.168.1.1/", "192.168.1.1 is a private address"},
		{"http://172.16.0.1/", "172.16.0.1 is a private address"},
		{"http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address (cloud metadata services"},
		{"http://[::1]:8081/", "::1 is a loopback address"},
		{"http://[fe80::1]/", "fe80::1 is a link-local address"},
		{"http://[fc00::5]/", "fc00::5 is a private address"},
		{"http://224.0.0.1/", "224.0.0.1 is a multicast address"},
		{"http://0.0.0.0/", "0.0.0.0 is an unspecified address"},
		{"http://100.64.0.1/", "100.64.0.1 is a shared address (carrier-grade NAT"},
		{"http://255.255.255.255/", "reserved or broadcast address"},
		{"http://[::ffff:10.0.0.1]/", "is a private address"},
		{"http://[64:ff9b::a00:1]/", "is a private address"},
		{"http://[::10.0.0.1]/", `::a00:1 carries the IPv4 address 10.0.0.1, which is a private address (RFC 1918, RFC 4193): pollhook sends to such addresses only when http.allow_targets holds them (for example "10.0.0.1/32")`},
		{"http://[::127.0.0.1]/", "::7f00:1 carries the IPv4 address 127.0.0.1, which is a loopback address"},
		{"http://[::169.254.169.254]/", "is a link-local address"},
		{"http://[2002:a9fe:a9fe::]/", "2002:a9fe:a9fe:: carries the IPv4 address 169.254.169.254, which is a link-local address"},
		{"http://[2002:7f00:1::1]/", "is a loopback address"},
		{"http://[2002:c0a8:101:1::5]/", "is a private address"},
		{"http://[2002::]/", "is an unspecified address"},
		{"http://[::]/", "is an unspecified address"},
		{"http://internal.example/hook", `host internal.example resolves to 127.0.0.1, which is a loopback address`},
		{"https://mixed.example/", "host mixed.example resolves to 10.0.0.7, which is a private address"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := g.CheckURL(t.Context(), tt.url)
			var re *RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("error %v, want a *RefusedError", err)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), "http.allow_targets") {
				t.Errorf("error %q, want %q and how to allow it", err, tt.msg)
			}
		})
	}
}

func TestCheckURLAllows(t *testing.T) {
	res := newResolver("api.example", "93.184.216.34", "office.example", "10.1.2.3")
	allow := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	g := NewGuard(allow, []string{"127.0.0.1:8080"}, res)
	for _, u := range []string{
		"https://api.example/hook",
		"http://93.184.216.34:8443/x?y=1",
		"http://10.0.0.1/",
		"http://office.example/",
		"http://127.0.0.1:8081/",      // loopback allowed; not pollhook's port
		"http://[2002:a00:1::]/",      // 6to4 of 10.0.0.1, which is allowed
		"http://[::10.9.9.9]/",        // IPv4-compatible, the same
		"http://[2002:5db8:d822::1]/", // 6to4 of 93.184.216.34: public
		"http://[2001:db8::1]/",       // no IPv4 inside: as it is
		"HTTPS://API.example/",
	} {
		if err := g.CheckURL(t.Context(), u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, tc := range []struct{ url, msg string }{
		{"http://127.0.0.1:8080/hooks", "127.0.0.1 is pollhook's own listen address: a subscription cannot point at pollhook itself"},
		{"http://127.0.0.2/", "127.0.0.2 is a loopback address"},
		{"ftp://api.example/", `want an http or https URL (got scheme "ftp")`},
		{"http:///path", "no host"},
		{"http://api.example:0/", `invalid port "0"`},
		{"http://missing.example/", "resolve host missing.example"},
		{"://x", "parse url: missing protocol scheme"},
	} {
		if err := g.CheckURL(t.Context(), tc.url); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want %q", tc.url, err, tc.msg)
		}
	}
}

func TestOwnListenAddressRefusedThroughAPI(t *testing.T) {
	e := newEnv(t) // loopback allowed; the API listens on 127.0.0.1:<port>
	r := e.do(t, "POST", "/hooks", fmt.Sprintf(`{"eventKey":"deal.add","hookUrl":"%s/hooks"}`, e.srv.URL))
	if r.status != http.StatusBadRequest || !strings.Contains(r.message(t), "pollhook's own listen address") {
		t.Errorf("hook on pollhook itself: %d %s, want 400", r.status, r.body)
	}

	// Every interface, as ":port" listens.
	g := NewGuard([]netip.Prefix{loopbackNet}, []string{":8080"}, nil)
	for _, u := range []string{"http://127.0.0.1:8080/", "http://[::1]:8080/", "http://0.0.0.0:8080/"} {
		var re *RefusedError
		if err := g.CheckURL(t.Context(), u); !errors.As(err, &re) || !re.Self {
			t.Errorf("%s with listen :8080: %v, want refused as pollhook itself", u, err)
		}
	}
	if err := g.CheckURL(t.Context(), "http://127.0.0.1:8081/"); err != nil {
		t.Errorf("another port: %v", err)
	}
}

func TestRefusedThroughAPI(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AllowTargets = nil })
	e.resolver.set("evil.example", "127.0.0.1")
	for _, u := range []string{"http://127.0.0.1:9/", "http://evil.example/", "http://169.254.169.254/"} {
		r := e.do(t, "POST", "/hooks", fmt.Sprintf(`{"eventKey":"deal.add","hookUrl":%q}`, u))
		if r.status != http.StatusBadRequest || !strings.Contains(r.message(t), "http.allow_targets") {
			t.Errorf("%s: %d %s, want 400 naming http.allow_targets", u, r.status, r.body)
		}
	}
	var hooks []KeapHook
	e.do(t, "GET", "/hooks", "").json(t, &hooks)
	if len(hooks) != 0 {
		t.Errorf("refused URLs made hooks: %+v", hooks)
	}
}

func TestDialRecheck(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set(HeaderHookSecret, r.Header.Get(HeaderHookSecret))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	// A name that was public when checked and resolves to loopback when
	// dialed (DNS rebinding) is refused at dial time.
	res := newResolver("rebind.example", "93.184.216.34")
	g := NewGuard(nil, nil, res)
	if err := g.CheckURL(t.Context(), "http://rebind.example:"+port+"/"); err != nil {
		t.Fatal(err)
	}
	res.set("rebind.example", "127.0.0.1")
	_, err := g.DialContext(t.Context(), "tcp", "rebind.example:"+port)
	var re *RefusedError
	if !errors.As(err, &re) || re.Addr != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("dial after rebinding: %v, want refused 127.0.0.1", err)
	}
	resp, err := g.Client(5 * time.Second).Get("http://rebind.example:" + port + "/")
	if err == nil {
		resp.Body.Close()
		t.Error("request after rebinding went through")
	} else if !errors.As(err, &re) {
		t.Errorf("request error %v, want a *RefusedError", err)
	}
	if _, err := g.DialContext(t.Context(), "tcp", "10.0.0.1:80"); !errors.As(err, &re) {
		t.Errorf("dial 10.0.0.1: %v, want refused", err)
	}
	if hits.Load() != 0 {
		t.Errorf("the loopback server got %d requests", hits.Load())
	}

	// The same handshake through the API leaves the hook Unverified.
	e := newEnv(t, func(o *Options) { o.AllowTargets = nil })
	e.resolver.set("rebind.example", "93.184.216.34")
	e.api.guard.resolver = &rebinder{first: "93.184.216.34", then: "127.0.0.1"}
	h := e.createHook(t, "deal.add", "http://rebind.example:"+port+"/")
	if h.Status != "Unverified" || hits.Load() != 0 {
		t.Errorf("hook %+v after rebinding, %d requests reached loopback; want Unverified and none", h, hits.Load())
	}

	// An allowed address is dialed.
	ok := NewGuard([]netip.Prefix{loopbackNet}, nil, res)
	resp, err = ok.Client(5 * time.Second).Get("http://rebind.example:" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if hits.Load() != 1 {
		t.Errorf("allowed request: %d hits, want 1", hits.Load())
	}
}

// rebinder answers first for its first lookup and then for every later one.
type rebinder struct {
	n           atomic.Int64
	first, then string
}

func (r *rebinder) LookupNetIP(_ context.Context, _, _ string) ([]netip.Addr, error) {
	if r.n.Add(1) == 1 {
		return []netip.Addr{netip.MustParseAddr(r.first)}, nil
	}
	return []netip.Addr{netip.MustParseAddr(r.then)}, nil
}

func TestRedirectNotFollowed(t *testing.T) {
	var hits atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set(HeaderHookSecret, r.Header.Get(HeaderHookSecret))
	}))
	defer target.Close()
	for _, to := range []string{target.URL + "/", "http://10.0.0.1/"} {
		t.Run(to, func(t *testing.T) {
			hits.Store(0)
			redirect := httptest.NewServer(http.RedirectHandler(to, http.StatusTemporaryRedirect))
			defer redirect.Close()

			g := NewGuard([]netip.Prefix{loopbackNet}, nil, nil)
			resp, err := g.Client(5*time.Second).Post(redirect.URL, "application/json", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != to {
				t.Errorf("status %d, Location %q: want the redirect itself", resp.StatusCode, resp.Header.Get("Location"))
			}

			e := newEnv(t)
			if h := e.createHook(t, "deal.add", redirect.URL); h.Status != "Unverified" {
				t.Errorf("hook behind a redirect: %s, want Unverified", h.Status)
			}
			if hits.Load() != 0 {
				t.Errorf("redirect target got %d requests", hits.Load())
			}
		})
	}
}

func TestClientHasNoProxy(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	g := NewGuard(nil, nil, nil)
	if g.Transport().Proxy != nil {
		t.Error("the guard's transport uses a proxy, which would dial unchecked")
	}
	if c := g.Client(time.Second); c.Transport != g.Transport() || c.Timeout != time.Second || c.CheckRedirect == nil {
		t.Errorf("client %+v", c)
	}
}
