package poller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pollhook/pollhook/config"
)

// sleeps records the waits a Client asks for and returns at once.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return nil
}

func (s *sleeps) waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func newClient(t *testing.T, src config.Source, rec *sleeps) *Client {
	t.Helper()
	if src.Name == "" {
		src.Name = "api"
	}
	opts := ClientOptions{}
	if rec != nil {
		opts.Sleep = rec.sleep
	}
	c, err := NewClient(src, opts)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

func TestResolve(t *testing.T) {
	tests := []struct {
		base, raw, want string
	}{
		{"https://api.infusionsoft.com/crm/rest/v1", "/contacts?x=1", "https://api.infusionsoft.com/crm/rest/v1/contacts?x=1"},
		{"https://api.infusionsoft.com/crm/rest/v1/", "/contacts", "https://api.infusionsoft.com/crm/rest/v1/contacts"},
		{"https://api.example.com/v1", "contacts", "https://api.example.com/v1/contacts"},
		{"https://api.example.com/v1", "?page=2", "https://api.example.com/v1?page=2"},
		{"https://api.example.com/v1", "", "https://api.example.com/v1"},
		{"https://api.example.com/v1?api-version=2", "/items?since=3", "https://api.example.com/v1/items?api-version=2&since=3"},
		{"https://api.example.com", "/items#frag", "https://api.example.com/items"},
		{"https://api.example.com/v1", "https://other.example.com/x?y=1", "https://other.example.com/x?y=1"},
		{"https://api.example.com/v1", "HTTP://other.example.com/x", "http://other.example.com/x"},
	}
	for _, tt := range tests {
		t.Run(tt.base+" "+tt.raw, func(t *testing.T) {
			c := newClient(t, config.Source{BaseURL: tt.base}, nil)
			u, err := c.resolve(tt.raw)
			if err != nil {
				t.Fatalf("resolve: %v", err)
			}
			if got := u.String(); got != tt.want {
				t.Errorf("resolve(%q) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}

	c := newClient(t, config.Source{}, nil)
	if _, err := c.resolve("/contacts"); err == nil || !strings.Contains(err.Error(), "sources[api].base_url") {
		t.Errorf("relative url without base_url: err = %v, want one naming sources[api].base_url", err)
	}
}

func TestNewClientErrors(t *testing.T) {
	tests := []struct {
		name string
		src  config.Source
		want string
	}{
		{"bad base", config.Source{Name: "a", BaseURL: "ftp://x"}, "sources[a].base_url"},
		{"bad auth", config.Source{Name: "a", Auth: config.Auth{Type: "kerberos"}}, `sources[a].auth.type: want none, bearer, basic, header, query or oauth2 (got "kerberos")`},
		{"header without name", config.Source{Name: "a", Auth: config.Auth{Type: config.AuthHeader, Value: "v"}}, "sources[a].auth.name"},
		{"oauth2 without token url", config.Source{Name: "a", Auth: config.Auth{Type: config.AuthOAuth2}}, "sources[a].auth.token_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewClient(tt.src, ClientOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name  string
		auth  config.Auth
		check func(r *http.Request) string // "" when the credentials are right
	}{
		{"none", config.Auth{Type: config.AuthNone}, func(r *http.Request) string {
			return r.Header.Get("Authorization")
		}},
		{"bearer", config.Auth{Type: config.AuthBearer, Token: "tok-123"}, func(r *http.Request) string {
			if got := r.Header.Get("Authorization"); got != "Bearer tok-123" {
				return "Authorization: " + got
			}
			return ""
		}},
		{"basic", config.Auth{Type: config.AuthBasic, Username: "ann", Password: "pw-456"}, func(r *http.Request) string {
			if u, p, ok := r.BasicAuth(); !ok || u != "ann" || p != "pw-456" {
				return fmt.Sprintf("basic %q %q %v", u, p, ok)
			}
			return ""
		}},
		{"header", config.Auth{Type: config.AuthHeader, Name: "X-Api-Key", Value: "key-789"}, func(r *http.Request) string {
			if got := r.Header.Get("X-Api-Key"); got != "key-789" {
				return "X-Api-Key: " + got
			}
			return ""
		}},
		{"query", config.Auth{Type: config.AuthQuery, Name: "hapikey", Value: "hk-000"}, func(r *http.Request) string {
			q := r.URL.Query()
			if got := q["hapikey"]; len(got) != 1 || got[0] != "hk-000" {
				return fmt.Sprintf("hapikey %q", got)
			}
			if q.Get("limit") != "5" {
				return "limit lost: " + r.URL.RawQuery
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if msg := tt.check(r); msg != "" {
					http.Error(w, msg, http.StatusUnauthorized)
					return
				}
				io.WriteString(w, `{"ok":true}`)
			}))
			defer srv.Close()
			c := newClient(t, config.Source{BaseURL: srv.URL, Auth: tt.auth}, &sleeps{})
			raw := "/x?limit=5"
			if tt.auth.Type == config.AuthQuery {
				// A stale credential in the URL is replaced, not repeated.
				raw += "&hapikey=stale"
			}
			resp, err := c.Get(context.Background(), raw)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if tt.auth.Type == config.AuthQuery && strings.Contains(resp.URL, "hk-000") {
				t.Errorf("Response.URL %q holds the query credential", resp.URL)
			}
		})
	}
}

func TestOAuth2(t *testing.T) {
	var tokenCalls atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		tokenCalls.Add(1)
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if r.PostForm.Get("grant_type") != "client_credentials" || id != "cid" || secret != "csecret" || r.PostForm.Get("scope") != "read write" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"at-1","token_type":"bearer","expires_in":3600}`)
	})
	mux.HandleFunc("GET /items", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer at-1" {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `[]`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var roundTrips atomic.Int32
	transport := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		roundTrips.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})
	auth := config.Auth{Type: config.AuthOAuth2, TokenURL: srv.URL + "/token", ClientID: "cid", ClientSecret: "csecret", Scopes: []string{"read", "write"}}
	c, err := NewClient(config.Source{Name: "api", BaseURL: srv.URL, Auth: auth}, ClientOptions{Transport: transport, Sleep: (&sleeps{}).sleep})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := c.Get(context.Background(), "/items"); err != nil {
			t.Fatalf("Get %d: %v", i, err)
		}
	}
	if n := tokenCalls.Load(); n != 1 {
		t.Errorf("token endpoint called %d times for 3 requests, want 1 (the token is cached)", n)
	}
	if n := roundTrips.Load(); n != 4 {
		t.Errorf("transport saw %d requests, want 4 (1 token + 3 resource)", n)
	}

	auth.ClientSecret = "wrong-secret"
	c, err = NewClient(config.Source{Name: "api", BaseURL: srv.URL, Auth: auth, Retry: config.FetchRetry{Attempts: 3}}, ClientOptions{Sleep: (&sleeps{}).sleep})
	if err != nil {
		t.Fatal(err)
	}
	before := tokenCalls.Load()
	_, err = c.Get(context.Background(), "/items")
	if err == nil || !strings.Contains(err.Error(), "oauth2") || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("bad client secret: err = %v, want an oauth2 invalid_client error", err)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("error %q holds the client secret", err)
	}
	if n := tokenCalls.Load() - before; n > 2 {
		t.Errorf("a rejected client secret was tried %d times, want it not retried", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestHeaders(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	c := newClient(t, config.Source{BaseURL: srv.URL, Headers: map[string]string{"X-Version": "2024-01", "Accept": "application/vnd.api+json"}}, nil)
	if _, err := c.Get(context.Background(), "/"); err != nil {
		t.Fatal(err)
	}
	if got.Get("X-Version") != "2024-01" || got.Get("Accept") != "application/vnd.api+json" {
		t.Errorf("headers sent: %v, want X-Version and the configured Accept", got)
	}

	c = newClient(t, config.Source{BaseURL: srv.URL}, nil)
	if _, err := c.Get(context.Background(), "/"); err != nil {
		t.Fatal(err)
	}
	if got.Get("Accept") != "application/json" || got.Get("User-Agent") != "pollhook" {
		t.Errorf("default headers: %v, want Accept: application/json and User-Agent: pollhook", got)
	}
}

// scripted serves the given responses in turn, repeating the last one.
type scripted struct {
	mu    sync.Mutex
	steps []func(w http.ResponseWriter, r *http.Request)
	calls int
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	step := s.steps[min(s.calls, len(s.steps)-1)]
	s.calls++
	s.mu.Unlock()
	step(w, r)
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func status(code int, header ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		if code == http.StatusOK {
			io.WriteString(w, `{"ok":true}`)
		} else {
			fmt.Fprintf(w, "{\n  \"error\": \"status %d\"\n}", code)
		}
	}
}

func TestRetries(t *testing.T) {
	type span struct{ lo, hi time.Duration }
	tests := []struct {
		name     string
		steps    []func(http.ResponseWriter, *http.Request)
		retry    config.FetchRetry
		wantErr  []string // substrings; nil for success
		attempts int      // requests the server sees
		waits    []span
	}{
		{
			name:     "429 with Retry-After seconds",
			steps:    []func(http.ResponseWriter, *http.Request){status(429, "Retry-After", "7"), status(200)},
			attempts: 2,
			waits:    []span{{7 * time.Second, 7 * time.Second}},
		},
		{
			name:     "503 then 200",
			steps:    []func(http.ResponseWriter, *http.Request){status(503), status(200)},
			attempts: 2,
			waits:    []span{{500 * time.Millisecond, time.Second}},
		},
		{
			name:     "Retry-After capped at max_wait",
			steps:    []func(http.ResponseWriter, *http.Request){status(503, "Retry-After", "600"), status(200)},
			retry:    config.FetchRetry{MaxWait: config.Duration(30 * time.Second)},
			attempts: 2,
			waits:    []span{{30 * time.Second, 30 * time.Second}},
		},
		{
			name:     "Retry-After as an HTTP date",
			steps:    []func(http.ResponseWriter, *http.Request){status(429, "Retry-After", "Fri, 31 Dec 2100 23:59:59 GMT"), status(200)},
			retry:    config.FetchRetry{MaxWait: config.Duration(20 * time.Second)},
			attempts: 2,
			waits:    []span{{20 * time.Second, 20 * time.Second}},
		},
		{
			name:     "404 fails at once",
			steps:    []func(http.ResponseWriter, *http.Request){status(404)},
			wantErr:  []string{"404 Not Found", "after 1 attempt:", "/items?token=REDACTED&page=REDACTED", `"error": "status 404"`},
			attempts: 1,
		},
		{
			name:     "attempts exhausted",
			steps:    []func(http.ResponseWriter, *http.Request){status(500), status(502), status(503)},
			retry:    config.FetchRetry{Attempts: 3},
			wantErr:  []string{"503 Service Unavailable", "after 3 attempts"},
			attempts: 3,
			waits:    []span{{500 * time.Millisecond, time.Second}, {time.Second, 2 * time.Second}},
		},
		{
			name:     "backoff capped at max_wait",
			steps:    []func(http.ResponseWriter, *http.Request){status(500)},
			retry:    config.FetchRetry{Attempts: 5, MaxWait: config.Duration(3 * time.Second)},
			wantErr:  []string{"500 Internal Server Error", "after 5 attempts"},
			attempts: 5,
			waits: []span{{500 * time.Millisecond, time.Second}, {time.Second, 2 * time.Second},
				{1500 * time.Millisecond, 3 * time.Second}, {1500 * time.Millisecond, 3 * time.Second}},
		},
		{
			name:     "501 is not retried",
			steps:    []func(http.ResponseWriter, *http.Request){status(501)},
			wantErr:  []string{"501 Not Implemented"},
			attempts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scripted{steps: tt.steps}
			srv := httptest.NewServer(s)
			defer srv.Close()
			rec := &sleeps{}
			c := newClient(t, config.Source{BaseURL: srv.URL, Retry: tt.retry}, rec)
			resp, err := c.Get(context.Background(), "/items?token=abc&page=2")
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				if resp.Attempts != tt.attempts {
					t.Errorf("Attempts = %d, want %d", resp.Attempts, tt.attempts)
				}
			} else {
				if err == nil {
					t.Fatal("Get succeeded, want an error")
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q spans lines", err)
				}
				var se *StatusError
				if !errors.As(err, &se) {
					t.Errorf("error %v is not a *StatusError", err)
				}
			}
			if n := s.count(); n != tt.attempts {
				t.Errorf("server saw %d requests, want %d", n, tt.attempts)
			}
			waits := rec.waits()
			if len(waits) != len(tt.waits) {
				t.Fatalf("waits = %v, want %d waits", waits, len(tt.waits))
			}
			for i, w := range waits {
				if w < tt.waits[i].lo || w > tt.waits[i].hi {
					t.Errorf("wait %d = %v, want within [%v, %v]", i, w, tt.waits[i].lo, tt.waits[i].hi)
				}
			}
		})
	}
}

func TestTimeoutIsRetried(t *testing.T) {
	s := &scripted{steps: []func(http.ResponseWriter, *http.Request){
		func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
		status(200),
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := newClient(t, config.Source{BaseURL: srv.URL, Timeout: config.Duration(50 * time.Millisecond)}, &sleeps{})
	resp, err := c.Get(context.Background(), "/slow")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if resp.Attempts != 2 {
		t.Errorf("Attempts = %d, want 2", resp.Attempts)
	}

	// Every attempt timing out: the error says so.
	s = &scripted{steps: []func(http.ResponseWriter, *http.Request){
		func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
	}}
	srv2 := httptest.NewServer(s)
	defer srv2.Close()
	c = newClient(t, config.Source{BaseURL: srv2.URL, Timeout: config.Duration(20 * time.Millisecond), Retry: config.FetchRetry{Attempts: 2}}, &sleeps{})
	_, err = c.Get(context.Background(), "/slow")
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "after 2 attempts") {
		t.Errorf("err = %v, want a deadline error after 2 attempts", err)
	}
}

func TestCanceledContextStopsRetries(t *testing.T) {
	s := &scripted{steps: []func(http.ResponseWriter, *http.Request){status(503)}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := NewClient(config.Source{Name: "api", BaseURL: srv.URL}, ClientOptions{Sleep: func(context.Context, time.Duration) error {
		cancel()
		return context.Canceled
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(ctx, "/")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if n := s.count(); n != 1 {
		t.Errorf("server saw %d requests after cancel, want 1", n)
	}
}

func TestMaxBodyBytes(t *testing.T) {
	const total = 100 << 20
	written := make(chan int64, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			io.WriteString(w, strings.Repeat("x", 1024))
			return
		}
		chunk := bytes.Repeat([]byte(" "), 32<<10)
		var n int64
		for n < total {
			m, err := w.Write(chunk)
			n += int64(m)
			if err != nil {
				break
			}
		}
		written <- n
	}))
	defer srv.Close()
	c := newClient(t, config.Source{Name: "big", BaseURL: srv.URL, MaxBodyBytes: 1024}, &sleeps{})

	if resp, err := c.Get(context.Background(), "/small"); err != nil || len(resp.Body) != 1024 {
		t.Fatalf("body of exactly max_body_bytes: err = %v", err)
	}
	_, err := c.Get(context.Background(), "/huge")
	want := "response body exceeds max_body_bytes 1KiB; raise sources[big].max_body_bytes"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to contain %q", err, want)
	}
	if n := <-written; n >= total {
		t.Errorf("server wrote the whole %d bytes: the client read past the cap", n)
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	const secret = "qs-very-secret-42"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A careless upstream echoes the request URL.
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "error on %s", r.URL)
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	var logs bytes.Buffer
	for _, base := range []string{srv.URL, closedURL} {
		c, err := NewClient(config.Source{
			Name: "api", BaseURL: base,
			Auth:  config.Auth{Type: config.AuthQuery, Name: "key", Value: secret},
			Retry: config.FetchRetry{Attempts: 2},
		}, ClientOptions{Sleep: (&sleeps{}).sleep, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Get(context.Background(), "/items?key="+secret)
		if err == nil {
			t.Fatalf("%s: Get succeeded, want an error", base)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error holds the secret: %v", err)
		}
		if !strings.Contains(err.Error(), "after 2 attempts") {
			t.Errorf("error %q does not say the attempts", err)
		}
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("no retry was logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("logs hold the secret: %s", logs.String())
	}
}

func TestRateLimit(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	rec := &sleeps{}
	c := newClient(t, config.Source{BaseURL: srv.URL, RateLimit: &config.RateLimit{PerSecond: 0.01, Burst: 1}}, rec)
	if _, err := c.Get(context.Background(), "/"); err != nil {
		t.Fatalf("first Get: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := c.Get(ctx, "/")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second Get within the deadline: err = %v, want context.DeadlineExceeded", err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}

	// Without a deadline the client waits its turn (about 100s at 0.01/s).
	if _, err := c.Get(context.Background(), "/"); err != nil {
		t.Fatalf("third Get: %v", err)
	}
	waits := rec.waits()
	if len(waits) != 1 || waits[0] < 90*time.Second || waits[0] > 100*time.Second {
		t.Errorf("rate waits = %v, want one of about 100s", waits)
	}
}

func TestRedirectDropsHeaderCredential(t *testing.T) {
	var leaked atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("X-Api-Key"))
		io.WriteString(w, `{}`)
	}))
	defer other.Close()
	// 127.0.0.1 and localhost are different hosts to the client.
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, otherURL+"/moved", http.StatusFound)
	}))
	defer srv.Close()
	c := newClient(t, config.Source{BaseURL: srv.URL, Auth: config.Auth{Type: config.AuthHeader, Name: "X-Api-Key", Value: "k-123"}}, nil)
	if _, err := c.Get(context.Background(), "/"); err != nil {
		t.Fatal(err)
	}
	if v, _ := leaked.Load().(string); v != "" {
		t.Errorf("redirect to another host carried X-Api-Key %q", v)
	}
}

func TestRedirectDowngradeIsRefused(t *testing.T) {
	var target string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target, http.StatusFound)
	}))
	defer srv.Close()
	target = "http://" + srv.Listener.Addr().String() + "/moved"
	spy := &plainHTTPSpy{rt: srv.Client().Transport}
	c, err := NewClient(config.Source{Name: "api", BaseURL: srv.URL, Auth: config.Auth{Type: config.AuthBearer, Token: "tok-secret-1"}},
		ClientOptions{Transport: spy, Sleep: (&sleeps{}).sleep})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), "/items")
	if err == nil || !strings.Contains(err.Error(), "after 1 attempt") || !strings.Contains(err.Error(), "refuse a redirect from https to plain http") {
		t.Errorf("err = %v, want a refused redirect, not retried", err)
	}
	if sent := spy.list(); len(sent) > 0 {
		t.Errorf("sent over plain http: %q", sent)
	}
}

func TestMaxBodyBytesDeclaredLengthReadsNothing(t *testing.T) {
	// The upstream declares a body over the cap, sends its start, then
	// waits: a client that reads before it checks Content-Length hangs on
	// it until the test's deadline; one that checks first fails at once.
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(10<<20))
		w.Write(bytes.Repeat([]byte(" "), 4096))
		w.(http.Flusher).Flush()
		<-release
	}))
	defer srv.Close()
	defer close(release)
	c := newClient(t, config.Source{Name: "big", BaseURL: srv.URL, MaxBodyBytes: 1 << 20, Timeout: config.Duration(5 * time.Second)}, &sleeps{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := c.Get(ctx, "/huge")
	if err == nil || !strings.Contains(err.Error(), "exceeds max_body_bytes") {
		t.Fatalf("err = %v, want max_body_bytes refused from the Content-Length", err)
	}
}

// TestSnippetKeepsTextAfterABadByte: an error body in Latin-1 (one byte
// that is not UTF-8 near its start) is still quoted, up to snippetBytes,
// with the bad byte shown as "?".
func TestSnippetKeepsTextAfterABadByte(t *testing.T) {
	body := []byte("Caf\xe9 closed:\n" + strings.Repeat("x", 300))
	got := snippet(body)
	want := "Caf? closed: " + strings.Repeat("x", snippetBytes-len("Caf\xe9 closed:\n")) + "…"
	if got != want {
		t.Errorf("snippet = %q, want %q", got, want)
	}
	if got := snippet([]byte("short\tbody")); got != "short body" {
		t.Errorf("snippet of a short body = %q", got)
	}
}
