package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/web"
)

// handler serves the operations endpoints:
//
//	/healthz  200 while the process runs
//	/readyz   200 when the database answers and its schema is current; the
//	          body says so, and lists the sources skipped or failing
//	/metrics  Prometheus metrics
//	/         the ops pages (web/), behind their sign-in
func (d *Daemon) handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), d.metrics)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", d.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: nil}))
	mux.Handle("/", d.web.Handler())
	return mux
}

// readiness is the body of /readyz.
type readiness struct {
	Ready    bool              `json:"ready"`
	Database string            `json:"database"`
	Sources  map[string]string `json:"sources,omitempty"` // only the ones not polled normally, with why
}

func (d *Daemon) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	res := readiness{Database: "ok", Sources: map[string]string{}}
	if err := d.ledger.CheckSchema(ctx); err != nil {
		res.Database = err.Error()
	} else {
		res.Ready = true
	}
	for name, err := range d.unusable {
		res.Sources[name] = "skipped: " + err.Error()
	}
	if health, err := d.ledger.SourcesHealth(ctx); err == nil {
		now := d.now()
		for _, h := range health {
			if _, err := d.cfg.Source(h.Source); err != nil || h.Failures == 0 {
				continue // healthy, or no longer configured
			}
			state := "failing since " + h.FailingSince.UTC().Format(time.RFC3339) + ": " + h.LastError
			if now.Before(h.NextAttempt) {
				state = "backed off until " + h.NextAttempt.UTC().Format(time.RFC3339) + "; " + state
			}
			res.Sources[h.Source] = state
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if !res.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(res)
}

// webReruns are the ops pages' controls: the daemon's reruns (their apply
// and answer jobs enqueued with the new file), a refusal in ops' words shown.
type webReruns struct{ d *Daemon }

var _ web.Reruns = webReruns{}

func (w webReruns) Reprocess(ctx context.Context, fileID int64, actor string) (int64, error) {
	r, err := w.d.Reprocess(ctx, fileID, actor)
	return r.File.ID, shownRefusal(err)
}

func (w webReruns) RetryRejected(ctx context.Context, fileID int64, actor string) (int64, error) {
	r, err := w.d.RetryRejected(ctx, fileID, actor)
	return r.File.ID, shownRefusal(err)
}

func shownRefusal(err error) error {
	var refused *ledger.RefusedError
	if errors.As(err, &refused) {
		return &web.Refused{Reason: err}
	}
	return err
}
