// Package daemon is returnsd run: the long-running process that polls the
// sources, applies their files, locks and pays, auto-resolves and auto-approves
// inquiries and tells partners about them, each on its schedule, on one machine
// or several against one database.
//
// The work is done by River jobs in the ledger's database. Each schedule is a
// River periodic job, enqueued by River's elected leader only and named by its
// scheduled time, so each scheduled run happens once whatever the number of
// replicas (and a run missed while the leader changed is made up). A poll
// keeps each new file's bytes and enqueues, in the same transaction, a job
// that applies it: any replica can, and a large file holds up no other
// source. A file's brand lock makes a file apply once even when River runs
// its job twice (a job of a replica that died is rescued by another after
// queue.rescue_after, which is also how long any job may run).
//
// The work itself is the code the command line runs: poller.PollOnce,
// Poller.ApplyWaiting, ledger.RunLifecycle, ledger.AutoResolveInquiries,
// ledger.AutoApproveInquiries, ledger.DeliverInquiryNotices, report.Deliver.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/mailer"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/poller"
	"github.com/returnsd/returnsd/schedules"
	"github.com/returnsd/returnsd/web"
)

// Queues of the daemon's jobs.
const (
	queuePoll   = "poll"   // polls and deliveries: network-bound, one source each
	queueFiles  = "files"  // applying files: the database's work
	queueLedger = "ledger" // lifecycle and auto-resolution: one at a time per replica
)

// catchUp is how far back a periodic job looks for a run it missed: a leader
// that starts makes up the last scheduled run of each job within it unless it
// was made (River keeps finished jobs for a day).
const catchUp = 23 * time.Hour

// fetchPollInterval is how often each queue looks for jobs it was not told of.
const fetchPollInterval = 5 * time.Second

// deliverEvery groups deliveries: results of files applied within the same
// window go out in one poll of their source at the window's end.
const deliverEvery = 2 * time.Second

// Params are what a daemon runs with.
type Params struct {
	// Config must have had WithDefaults and Validate.
	Config *config.Config
	// Ledger is open, its schema current, the config's brands synced.
	Ledger *ledger.Ledger
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Ready, when set, is called with the address the operations listener
	// serves on, once the replica runs.
	Ready func(addr string)
}

// Daemon is one replica.
type Daemon struct {
	cfg     *config.Config
	ledger  *ledger.Ledger
	log     *slog.Logger
	now     func() time.Time
	files   *pipeline.Pipeline
	poller  *poller.Poller
	client  *river.Client[pgx.Tx]
	metrics *metrics
	web     *web.Server
	ready   func(addr string)
	// partners mails partners about their inquiries; nil without an smtp section.
	partners *PartnerMailer
	// unusable are the sources skipped for want of a secret, with why.
	unusable map[string]error
}

// New builds a replica: its River client with the workers and the periodic
// jobs of every schedule. Nothing runs until Run.
func New(p Params) (*Daemon, error) {
	d := &Daemon{cfg: p.Config, ledger: p.Ledger, log: p.Logger, now: p.Now, ready: p.Ready,
		unusable: map[string]error{}}
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.files = &pipeline.Pipeline{Ledger: d.ledger, Limits: pipeline.Limits(d.cfg.Limits), Logger: d.log,
		SpoolDir: filepath.Join(d.cfg.SpoolDir, "ledger")}
	d.poller = &poller.Poller{Ledger: d.ledger, Files: d.files, Config: d.cfg, Logger: d.log, Enqueue: d.enqueueApply,
		EnqueueAnswer: d.enqueueAnswer, OpenSource: d.openSource}
	d.metrics = newMetrics(d)
	if !d.cfg.SMTP.IsZero() {
		d.partners = NewPartnerMailer(&d.cfg.SMTP)
	}

	if have, need := d.ledger.Pool().Config().MaxConns, Connections(d.cfg); have < need {
		return nil, fmt.Errorf("daemon: the database pool opens at most %d connections (pool_max_conns) "+
			"but a replica with queue.poll_workers %d and queue.file_workers %d may hold %d at once; "+
			"raise pool_max_conns or lower the workers", have, d.cfg.Queue.PollWorkers, d.cfg.Queue.FileWorkers, need)
	}
	for i := range d.cfg.Sources {
		s := &d.cfg.Sources[i]
		if err := d.cfg.SourceUnusable(s); err != nil {
			d.unusable[s.Name] = err
			d.log.Error("source skipped: it cannot be used here", "source", s.Name, "error", err)
		}
	}
	periodic, err := d.periodicJobs()
	if err != nil {
		return nil, err
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &pollWorker{d: d})
	river.AddWorker(workers, &applyWorker{d: d})
	river.AddWorker(workers, &answerWorker{d: d})
	river.AddWorker(workers, &lifecycleWorker{d: d})
	river.AddWorker(workers, &autoResolveWorker{d: d})
	river.AddWorker(workers, &autoApproveWorker{d: d})
	river.AddWorker(workers, &notifyWorker{d: d})
	river.AddWorker(workers, &reportWorker{d: d, mail: mailer.New(&d.cfg.SMTP)})
	d.client, err = river.NewClient(riverpgxv5.New(d.ledger.Pool()), &river.Config{
		Queues: map[string]river.QueueConfig{
			queuePoll:   {MaxWorkers: d.cfg.Queue.PollWorkers},
			queueFiles:  {MaxWorkers: d.cfg.Queue.FileWorkers},
			queueLedger: {MaxWorkers: 1},
		},
		Workers:      workers,
		PeriodicJobs: periodic,
		// River rescues only a job with a timeout, once it is past it: a job
		// without one (-1) of a replica that died would stay running for ever,
		// and its file unapplied (no poll can enqueue it again while its job
		// runs). So every job times out at rescue_after: cancelled there (an
		// apply rolls back) and retried, while a dead replica's job is run
		// again elsewhere after as long (and River's 30 s rescue interval).
		JobTimeout:           mustFixed(d.cfg.Queue.RescueAfter),
		RescueStuckJobsAfter: mustFixed(d.cfg.Queue.RescueAfter),
		// Each queue asks the database for work this often besides when
		// LISTEN/NOTIFY says a job is there (an insert, by any replica, or a
		// scheduled job coming due, which the leader announces): only a
		// notification lost while the listener reconnects waits for it.
		// River's default, 1 s (three queries a second), was a fifth of what
		// an idle replica costs.
		FetchPollInterval: fetchPollInterval,
		Logger:            riverLogger(d.log),
		ErrorHandler:      &errorHandler{log: d.log},
	})
	if err != nil {
		return nil, fmt.Errorf("daemon: job queue: %w", err)
	}
	d.web, err = web.New(web.Params{Config: d.cfg, Ledger: d.ledger, Files: d.files, Logger: d.log.With("component", "web"),
		Now: d.now, Jobs: d.client, Reruns: webReruns{d}})
	if err != nil {
		return nil, fmt.Errorf("daemon: ops pages: %w", err)
	}
	return d, nil
}

// Connections is how many database connections a replica may hold at once,
// which its Ledger's pool must allow (ledger.OpenPool): two per poll worker (a
// poll keeps its source's lock on one connection and works on another), one
// per file worker and for the lifecycle's worker, and a few for the job
// queue's own work and the operations endpoints. With fewer, polls that start
// together take every connection and wait for ever for a second one.
func Connections(cfg *config.Config) int32 {
	const queueOwn = 4 // River's fetches, completions, leader and maintenance; /readyz and /metrics
	return int32(2*cfg.Queue.PollWorkers + cfg.Queue.FileWorkers + 1 + queueOwn)
}

// Run runs the replica until ctx is done, then stops: it takes no new job,
// lets running ones finish within the config's shutdown_timeout, and then
// cancels them (an apply cancelled rolls back whole; its file is applied by
// the next replica or start). It returns nil after a clean stop.
func (d *Daemon) Run(ctx context.Context) error {
	l, err := net.Listen("tcp", d.cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("daemon: listen on %s (http.listen): %w", d.cfg.HTTP.Listen, err)
	}
	// The ops pages' background work (River's UI caches counts) stops with ctx.
	if err := d.web.Start(ctx); err != nil {
		l.Close()
		return err
	}
	srv := &http.Server{Handler: d.handler(), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(l) }()
	// The queue runs on its own context: stopping is Stop's business, so a
	// running apply is let finish before anything is cancelled.
	if err := d.client.Start(context.WithoutCancel(ctx)); err != nil {
		srv.Close()
		return fmt.Errorf("daemon: start the job queue: %w", err)
	}
	// The client id is how River's tables name this replica (river_leader,
	// river_job.attempted_by).
	d.log.Info("returnsd running", "listen", l.Addr().String(), "client_id", d.client.ID(),
		"sources", len(d.cfg.Sources), "skipped_sources", len(d.unusable))
	if d.ready != nil {
		d.ready(l.Addr().String())
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		d.log.Error("operations listener failed; stopping", "error", err)
	}
	timeout := mustFixed(d.cfg.ShutdownTimeout)
	d.log.Info("stopping: no new jobs; waiting for running ones", "timeout", timeout)
	stopCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stopErr := d.client.Stop(stopCtx)
	if errors.Is(stopErr, context.DeadlineExceeded) {
		d.log.Warn("jobs still running at the shutdown timeout: cancelled; their transactions roll back")
		cancelCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		stopErr = d.client.StopAndCancel(cancelCtx)
	}
	shutCtx, cancelShut := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShut()
	if err := srv.Shutdown(shutCtx); err != nil {
		d.log.Warn("operations listener did not stop cleanly", "error", err)
	}
	if stopErr != nil {
		return fmt.Errorf("daemon: stop: %w", stopErr)
	}
	d.log.Info("stopped")
	return nil
}

// periodicJobs are River's periodic jobs, one per schedule of the config.
func (d *Daemon) periodicJobs() ([]*river.PeriodicJob, error) {
	specs, err := d.periodicSpecs()
	if err != nil {
		return nil, err
	}
	out := make([]*river.PeriodicJob, len(specs))
	for i, s := range specs {
		out[i] = river.NewPeriodicJob(s.schedule, s.construct, &river.PeriodicJobOpts{ID: s.id, RunOnStart: s.runOnStart})
	}
	return out, nil
}

// periodicSpec is a periodic job as the daemon hands it to River, whose
// PeriodicJob keeps its parts to itself: a test drives these the way River's
// enqueuer does.
type periodicSpec struct {
	id         string
	schedule   schedules.Schedule
	construct  river.PeriodicJobConstructor
	runOnStart bool // a new leader inserts the last run it may have missed
}

// periodicSpecs are the daemon's periodic jobs, one per schedule of the
// config, but the sources it skips and the report's (it comes with the report).
func (d *Daemon) periodicSpecs() ([]periodicSpec, error) {
	jobs, err := d.cfg.Jobs()
	if err != nil {
		return nil, err
	}
	var out []periodicSpec
	for _, j := range jobs {
		var args func(runAt time.Time) river.JobArgs
		switch name := j.Name; {
		case name == config.JobLifecycle:
			args = func(at time.Time) river.JobArgs { return LifecycleArgs{RunAt: at} }
		case name == config.JobAutoResolve:
			args = func(at time.Time) river.JobArgs { return AutoResolveArgs{RunAt: at} }
		case name == config.JobAutoApprove:
			args = func(at time.Time) river.JobArgs { return AutoApproveArgs{RunAt: at} }
		case name == config.JobNotify:
			if d.partners == nil {
				continue // no smtp section, so no partner has a contact (Validate)
			}
			if why := d.cfg.SMTP.PasswordEnv.Missing(); why != "" {
				d.log.Error("partners are not mailed: the smtp password cannot be had here", "why", why)
				continue
			}
			args = func(at time.Time) river.JobArgs { return NotifyArgs{RunAt: at} }
		case name == config.JobReport:
			if why := d.reportUnusable(); why != "" {
				d.log.Info("the daily report is not mailed: "+why, "schedule", j.Schedule.String())
				continue
			}
			args = func(at time.Time) river.JobArgs { return ReportArgs{RunAt: at} }
		case strings.HasPrefix(name, config.JobPollPrefix):
			source := strings.TrimPrefix(name, config.JobPollPrefix)
			if d.unusable[source] != nil {
				continue
			}
			args = func(at time.Time) river.JobArgs { return PollArgs{Source: source, RunAt: at} }
		default:
			continue
		}
		out = append(out, periodicSpec{id: j.Name, schedule: j.Schedule, construct: d.periodic(j, args),
			runOnStart: j.Schedule.Every() == 0})
	}
	return out, nil
}

// reportUnusable says why the daily report cannot be mailed from here, or "".
func (d *Daemon) reportUnusable() string {
	switch {
	case !d.cfg.Report.Mails():
		return "report.recipients is empty"
	case d.cfg.SMTP.PasswordEnv.Missing() != "":
		return "the smtp password: " + d.cfg.SMTP.PasswordEnv.Missing()
	}
	return ""
}

// periodic is the constructor of a job's runs. A cron schedule's run is named
// by its scheduled time, and its job is unique by name and time: two leaders
// in a handover insert it once, and a leader that starts (RunOnStart) inserts
// the last run it may have missed, which is dropped if it was made. An @every
// schedule's runs fall on no fixed times; it is unique by its interval.
func (d *Daemon) periodic(j schedules.Job, args func(runAt time.Time) river.JobArgs) river.PeriodicJobConstructor {
	return func() (river.JobArgs, *river.InsertOpts) {
		if every := j.Schedule.Every(); every != 0 {
			return args(time.Time{}), &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: every}}
		}
		// River inserts a run up to 100 ms early; a second's margin names it right.
		runAt, ok := j.Schedule.Previous(d.now().Add(time.Second), catchUp)
		if !ok {
			return nil, nil
		}
		runAt = runAt.UTC()
		return args(runAt), &river.InsertOpts{ScheduledAt: runAt, UniqueOpts: river.UniqueOpts{ByArgs: true}}
	}
}

// enqueueApply is the poller's Enqueue: the job that applies a received file,
// in the transaction that received it (tx nil: on its own, when a poll finds
// the file still waiting; a job already queued or running makes it a no-op).
func (d *Daemon) enqueueApply(ctx context.Context, tx pgx.Tx, fileID int64) error {
	var err error
	if tx != nil {
		_, err = d.client.InsertTx(ctx, tx, ApplyArgs{FileID: fileID}, nil)
	} else {
		_, err = d.client.Insert(ctx, ApplyArgs{FileID: fileID}, nil)
	}
	if err != nil {
		return fmt.Errorf("enqueue file %d: %w", fileID, err)
	}
	return nil
}

// enqueueDelivery asks for a poll of source that only delivers results, at
// the end of the current delivery window: files applied within one window
// are answered by one poll, and a file applied while that poll runs falls in
// the next window's.
func (d *Daemon) enqueueDelivery(ctx context.Context, source string) error {
	at := d.now().Truncate(deliverEvery).Add(deliverEvery)
	_, err := d.client.Insert(ctx, PollArgs{Source: source, DeliverOnly: true, RunAt: at.UTC()},
		&river.InsertOpts{ScheduledAt: at, UniqueOpts: river.UniqueOpts{ByArgs: true}})
	if err != nil {
		return fmt.Errorf("enqueue delivery for source %s: %w", source, err)
	}
	return nil
}

// mustFixed is a validated clock duration.
func mustFixed(d config.Duration) time.Duration {
	v, _ := d.Fixed()
	return v
}
