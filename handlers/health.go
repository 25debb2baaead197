package handlers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sessionlab/sessionlab/internal/redisconn"
)

// healthz handles GET /healthz: the process is alive.
func (a *App) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// readyz handles GET /readyz: Redis takes writes, else the body says why.
// ReadyWithoutRedis answers 200 all the same, as pulling every instance would
// swap the app's truthful 503 for the balancer's page (docs/deploy.md).
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if a.draining.Load() {
		answerPlain(w, failDraining, "draining: this instance stops soon and serves requests until then\n")
		return
	}
	health, err := a.Ready(ctx)
	if err != nil {
		reason := "not serving"
		if kind, ok := redisconn.Unavailable(err); ok {
			reason = string(kind)
		}
		text := fmt.Sprintf("redis unavailable: %s: %v\n", reason, err)
		if !a.ReadyWithoutRedis {
			answerPlain(w, failNotReady, text)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, "ready (-ready-without-redis)\n"+text)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, "ready\n")
	if health.Policy != "" {
		fmt.Fprintf(w, "maxmemory-policy: %s\n", health.Policy)
	}
	if warning := health.Warning(); warning != "" {
		fmt.Fprintf(w, "warning: %s\n", warning)
	}
}
