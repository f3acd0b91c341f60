package runtime

import (
	"net/http"

	"github.com/pollhook/pollhook/internal/console"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the runtime's HTTP endpoints:
//
//	GET /healthz   200 while the process is alive
//	GET /readyz    200 when the store serves and a configuration runs, else 503 with the reason
//	GET /metrics   Prometheus metrics
//	/hooks, /v1/webhooks   the REST Hooks API (package hooks), on the running configuration
//	/ui/           the web console (package console), on when http.token is set
func (r *Runtime) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := r.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{Registry: r.reg}))
	// The REST Hooks API of the running configuration, whose resources
	// say which event keys exist.
	hooksAPI := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.api.Load().Handler().ServeHTTP(w, req)
	})
	for _, p := range []string{"/hooks", "/hooks/", "/v1/webhooks", "/v1/webhooks/"} {
		mux.Handle(p, hooksAPI)
	}
	mux.Handle("/ui", r.console)
	mux.Handle(console.Prefix, r.console)
	return mux
}
