package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/poller"
)

// metrics are the daemon's Prometheus metrics. What happens in this process
// (files applied, rows, polls) is counted as it happens; every replica counts
// its own, and Prometheus sums them. What is true of the ledger as a whole
// (sources' health, the queue's depth, balances) is read from the database at
// each scrape, so every replica reports the same.
type metrics struct {
	d *Daemon

	files      *prometheus.CounterVec
	rows       *prometheus.CounterVec
	applyTime  prometheus.Histogram
	polls      *prometheus.CounterVec
	pollErrors *prometheus.CounterVec

	lastSuccess   *prometheus.Desc
	failures      *prometheus.Desc
	backedOff     *prometheus.Desc
	unusable      *prometheus.Desc
	jobs          *prometheus.Desc
	negative      *prometheus.Desc
	delayed       *prometheus.Desc
	scrapeFailure *prometheus.Desc
}

func newMetrics(d *Daemon) *metrics {
	return &metrics{
		d: d,
		files: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "returnsd_files_total", Help: "Files this replica finished, by status (COMPLETED, DUPLICATE_FILE, QUARANTINED).",
		}, []string{"status"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "returnsd_rows_total", Help: "Rows of the files this replica applied, by outcome and code (empty for APPLIED).",
		}, []string{"outcome", "code"}),
		applyTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "returnsd_apply_duration_seconds", Help: "How long applying one file took, from its stored bytes to its commit.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14), // 50 ms to about 7 minutes
		}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "returnsd_polls_total", Help: "Polls this replica made, by source.",
		}, []string{"source"}),
		pollErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "returnsd_poll_errors_total", Help: "Polls of this replica that failed (the source, or some file of it), by source.",
		}, []string{"source"}),
		lastSuccess: prometheus.NewDesc("returnsd_source_last_success_timestamp_seconds",
			"When the source was last listed successfully (Unix time).", []string{"source"}, nil),
		failures: prometheus.NewDesc("returnsd_source_failures",
			"Failed polls of the source in a row (0: healthy).", []string{"source"}, nil),
		backedOff: prometheus.NewDesc("returnsd_source_backed_off",
			"1 while the source is backed off after failures.", []string{"source"}, nil),
		unusable: prometheus.NewDesc("returnsd_source_unusable",
			"1 for a source this replica skips: a secret it needs is not set.", []string{"source"}, nil),
		jobs: prometheus.NewDesc("returnsd_jobs",
			"Jobs not finished in the queue, by queue and state (available, scheduled, running, retryable).", []string{"queue", "state"}, nil),
		negative: prometheus.NewDesc("returnsd_brand_negative_balance",
			"1 for a brand whose balance is negative: payouts wait for funds.", []string{"brand"}, nil),
		delayed: prometheus.NewDesc("returnsd_delayed_payouts",
			"Payouts booked but not covered by the brand's funds.", []string{"brand"}, nil),
		scrapeFailure: prometheus.NewDesc("returnsd_metrics_database_error",
			"1 when the metrics read from the database could not be read at this scrape.", nil, nil),
	}
}

// applied counts a file ApplyWaiting applied.
func (m *metrics) applied(a poller.Applied) {
	m.files.WithLabelValues(string(a.Result.Status)).Inc()
	if a.Result.Status == outcome.Quarantined {
		return
	}
	s := a.Result.Summary
	m.applyTime.Observe(a.Duration.Seconds())
	m.rows.WithLabelValues(string(outcome.Applied), "").Add(float64(s.Applied))
	var coded int
	for code, n := range s.ByCode {
		o := outcome.Rejected
		if code == outcome.DuplicateOperation || code == outcome.DuplicateRequestID {
			o = outcome.DuplicateRow
		}
		m.rows.WithLabelValues(string(o), string(code)).Add(float64(n))
		coded += n
	}
	if rest := s.Rejected + s.Duplicate - coded; rest > 0 {
		m.rows.WithLabelValues(string(outcome.Rejected), "").Add(float64(rest))
	}
}

// poll counts a poll of source and whether it failed.
func (m *metrics) poll(source string, err error) {
	m.polls.WithLabelValues(source).Inc()
	var off *poller.BackingOffError
	if err != nil && !errors.As(err, &off) {
		m.pollErrors.WithLabelValues(source).Inc()
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.files.Describe(ch)
	m.rows.Describe(ch)
	m.applyTime.Describe(ch)
	m.polls.Describe(ch)
	m.pollErrors.Describe(ch)
	for _, d := range []*prometheus.Desc{m.lastSuccess, m.failures, m.backedOff, m.unusable, m.jobs,
		m.negative, m.delayed, m.scrapeFailure} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.files.Collect(ch)
	m.rows.Collect(ch)
	m.applyTime.Collect(ch)
	m.polls.Collect(ch)
	m.pollErrors.Collect(ch)
	for name := range m.d.unusable {
		ch <- prometheus.MustNewConstMetric(m.unusable, prometheus.GaugeValue, 1, name)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	failed := 0.0
	if health, err := m.d.ledger.SourcesHealth(ctx); err != nil {
		failed = 1
	} else {
		now := m.d.now()
		for _, h := range health {
			if !h.LastSuccess.IsZero() {
				ch <- prometheus.MustNewConstMetric(m.lastSuccess, prometheus.GaugeValue, float64(h.LastSuccess.Unix()), h.Source)
			}
			ch <- prometheus.MustNewConstMetric(m.failures, prometheus.GaugeValue, float64(h.Failures), h.Source)
			ch <- prometheus.MustNewConstMetric(m.backedOff, prometheus.GaugeValue, bool01(now.Before(h.NextAttempt)), h.Source)
		}
	}
	if counts, err := m.d.ledger.JobCounts(ctx); err != nil {
		failed = 1
	} else {
		for _, c := range counts {
			ch <- prometheus.MustNewConstMetric(m.jobs, prometheus.GaugeValue, float64(c.Count), c.Queue, c.State)
		}
	}
	if balances, err := m.d.ledger.Balances(ctx); err != nil {
		failed = 1
	} else {
		for _, b := range balances {
			ch <- prometheus.MustNewConstMetric(m.negative, prometheus.GaugeValue, bool01(b.Balance < 0), b.Brand)
			ch <- prometheus.MustNewConstMetric(m.delayed, prometheus.GaugeValue, float64(b.DelayedCount), b.Brand)
		}
	}
	ch <- prometheus.MustNewConstMetric(m.scrapeFailure, prometheus.GaugeValue, failed)
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
