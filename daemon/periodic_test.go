package daemon

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/returnsd/returnsd"
	"github.com/returnsd/returnsd/config"
)

// The periodic jobs of this config run in two zones: acme's sources and
// auto-resolution on New York's wall clock, globex's sources and the
// lifecycle on Berlin's. In 2026 New York's clocks go forward on March 8 and
// back on November 1; Berlin's on March 29 and October 25.
const dstSources = `
sources:
  - {name: acme-daily, brand: acme, type: localdir, path: /nonexistent/acme, schedule: "30 2 * * *"}
  - {name: acme-hourly, brand: acme, type: localdir, path: /nonexistent/acme, schedule: "15 * * * *"}
  - {name: globex-daily, brand: globex, type: localdir, path: /nonexistent/globex, schedule: "30 2 * * *"}
  - {name: globex-every, brand: globex, type: localdir, path: /nonexistent/globex, schedule: "@every 30m"}
`

// leaderTerm is one replica's time as River's leader, whose periodic job
// enqueuer inserts the scheduled runs. Its timer fires late by timerLate
// after a run's time (negative: early, as River's 100 ms margin lets it).
type leaderTerm struct {
	name      string
	from, to  time.Time
	timerLate time.Duration
}

// TestPeriodicJobsAcrossDST drives the daemon's real periodic jobs (the
// schedules and constructors it gives River) with a fake clock, the way
// River's PeriodicJobEnqueuer does (river v0.51.2,
// internal/maintenance/periodic_job_enqueuer.go): a leader that starts sets
// each job's next run to schedule.Next(now) and inserts the RunOnStart ones at
// once; whenever its timer fires it inserts every job whose next run is less
// than 100 ms away and moves that job to schedule.Next(its run). An insert is
// dropped when River's unique key (kind, args, and for ByPeriod the period)
// is held, as River's unique index does.
//
// Over two windows holding the four DST changes of 2026, with a handover in
// each (two leaders inserting the same runs for hours) and a leader that dies
// with the next one elected late (its RunOnStart makes up what was missed),
// every run of every cron schedule happens exactly once, and per local day:
// a daily 02:30 runs once (at 03:00 when the clocks skip 02:30, at the first
// 02:30 when they repeat it), an hourly one runs every real hour (23 or 25
// times on the days of the changes), a daily 01:30 in New York runs once on
// the night 01:30 comes twice.
func TestPeriodicJobsAcrossDST(t *testing.T) {
	t.Parallel()
	ny, berlin := mustZone(t, "America/New_York"), mustZone(t, "Europe/Berlin")
	utc := func(s string) time.Time {
		at, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	// Hourly jobs run 23 times on the day the clocks go forward and 25 on the
	// day they go back; daily jobs once every day.
	hourly := func(forward, back string) func(day string) int {
		return func(day string) int {
			switch day {
			case forward:
				return 23
			case back:
				return 25
			}
			return 24
		}
	}
	daily := func(string) int { return 1 }
	perDay := map[string]struct {
		zone *time.Location
		runs func(day string) int
	}{
		"poll:acme-daily":   {ny, daily},
		"poll:acme-hourly":  {ny, hourly("2026-03-08", "2026-11-01")},
		"poll:globex-daily": {berlin, daily},
		"lifecycle":         {berlin, hourly("2026-03-29", "2026-10-25")},
		"auto_resolve":      {ny, daily},
		"auto_approve":      {berlin, hourly("2026-03-29", "2026-10-25")},
	}

	for _, w := range []struct {
		name       string
		start, end time.Time
		days       [2]string // the local days counted, first and last
		leaders    []leaderTerm
		// runs that must be there, at these UTC times
		want map[string][]string
		// runs made up by the late leader's RunOnStart
		caughtUp map[string]string
		// runs both leaders of the handover inserted, kept once
		handedOver map[string]string
	}{{
		name:  "Spring",
		start: utc("2026-03-06T00:00:00Z"), end: utc("2026-03-31T12:00:00Z"),
		days: [2]string{"2026-03-07", "2026-03-30"},
		leaders: []leaderTerm{
			{name: "A", from: utc("2026-03-06T00:00:00Z"), to: utc("2026-03-08T09:00:00Z"), timerLate: -99 * time.Millisecond},
			// The handover: B is elected while A still runs and inserts.
			{name: "B", from: utc("2026-03-08T05:30:07Z"), to: utc("2026-03-29T00:50:00Z"), timerLate: 2 * time.Second},
			// B dies; C is elected 50 minutes later, past Berlin's jump.
			{name: "C", from: utc("2026-03-29T01:40:13Z"), to: utc("2026-03-31T12:00:00Z"), timerLate: 500 * time.Millisecond},
		},
		want: map[string][]string{
			// New York skips 02:00-03:00 on March 8: 02:30 runs at 03:00 EDT.
			"poll:acme-daily": {"2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"},
			// Berlin skips 02:00-03:00 on March 29: 02:30 runs at 03:00 CEST.
			"poll:globex-daily": {"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"},
		},
		caughtUp: map[string]string{
			"poll:globex-daily": "2026-03-29T01:00:00Z", // the jump's run, missed while nobody led
			"lifecycle":         "2026-03-29T01:05:00Z",
			"poll:acme-hourly":  "2026-03-29T01:15:00Z",
		},
		handedOver: map[string]string{
			"poll:acme-daily":  "2026-03-08T07:00:00Z",
			"poll:acme-hourly": "2026-03-08T07:15:00Z",
			"auto_resolve":     "2026-03-08T06:30:00Z",
			"lifecycle":        "2026-03-08T08:05:00Z",
		},
	}, {
		name:  "Autumn",
		start: utc("2026-10-22T00:00:00Z"), end: utc("2026-11-04T12:00:00Z"),
		days: [2]string{"2026-10-23", "2026-11-03"},
		leaders: []leaderTerm{
			{name: "A", from: utc("2026-10-22T00:00:00Z"), to: utc("2026-10-25T02:55:00Z"), timerLate: -99 * time.Millisecond},
			// The handover spans Berlin's repeated hour (02:00-03:00 twice).
			{name: "B", from: utc("2026-10-25T00:10:07Z"), to: utc("2026-11-01T05:25:00Z"), timerLate: 2 * time.Second},
			// B dies at 01:25 EDT; C is elected at 01:20 EST, the hour New York repeats.
			{name: "C", from: utc("2026-11-01T06:20:13Z"), to: utc("2026-11-04T12:00:00Z"), timerLate: 500 * time.Millisecond},
		},
		want: map[string][]string{
			// 02:30 comes twice in Berlin on October 25: the first one runs.
			"poll:globex-daily": {"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"},
			// 01:30 comes twice in New York on November 1: the first one runs.
			"auto_resolve":    {"2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"},
			"poll:acme-daily": {"2026-10-31T06:30:00Z", "2026-11-01T07:30:00Z", "2026-11-02T07:30:00Z"},
			// Every real hour through the repeated one.
			"poll:acme-hourly": {"2026-11-01T04:15:00Z", "2026-11-01T05:15:00Z", "2026-11-01T06:15:00Z", "2026-11-01T07:15:00Z"},
			"lifecycle":        {"2026-10-25T00:05:00Z", "2026-10-25T01:05:00Z", "2026-10-25T02:05:00Z"},
		},
		caughtUp: map[string]string{
			"auto_resolve":     "2026-11-01T05:30:00Z", // the first 01:30; the second is no run
			"lifecycle":        "2026-11-01T06:05:00Z",
			"poll:acme-hourly": "2026-11-01T06:15:00Z",
		},
		handedOver: map[string]string{
			"poll:globex-daily": "2026-10-25T00:30:00Z",
			"lifecycle":         "2026-10-25T01:05:00Z",
			"poll:acme-hourly":  "2026-10-25T02:15:00Z",
		},
	}} {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			clock := &fakeClock{}
			d := dstDaemon(t, clock.Now)
			specs, err := d.periodicSpecs()
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, s := range specs {
				ids = append(ids, s.id)
			}
			if want := []string{"lifecycle", "auto_resolve", "auto_approve", "poll:acme-daily", "poll:acme-hourly",
				"poll:globex-daily", "poll:globex-every"}; !slices.Equal(ids, want) {
				t.Fatalf("periodic jobs %v, want %v", ids, want)
			}
			q := simulateLeaders(t, specs, clock, w.leaders, w.end)
			byJob := map[string][]insertedRun{}
			for _, r := range q.runs {
				byJob[r.job] = append(byJob[r.job], r)
			}

			for _, s := range specs {
				runs := byJob[s.id]
				if s.schedule.Every() != 0 {
					checkEvery(t, s, runs, w.leaders)
					continue
				}
				// Every scheduled time from the one before the first leader
				// started (made by its RunOnStart, if within catchUp) to
				// the end, each once, named by it.
				first, ok := s.schedule.Previous(w.start.Add(time.Second), catchUp)
				if !ok {
					first = s.schedule.Next(w.start)
				}
				var want, got []time.Time
				for at := first; !at.After(w.end); at = s.schedule.Next(at) {
					want = append(want, at.UTC())
				}
				for _, r := range runs {
					got = append(got, r.runAt)
					if !r.runAt.Equal(r.scheduledAt) {
						t.Errorf("%s: run %s is scheduled at %s: a run is named by its scheduled time", s.id, r.runAt, r.scheduledAt)
					}
				}
				slices.SortFunc(got, time.Time.Compare)
				if !slices.EqualFunc(got, want, time.Time.Equal) {
					t.Errorf("%s: %d runs, want each of its %d scheduled times once:\n%s", s.id, len(got), len(want),
						firstTimeDiff(got, want))
				}

				// Per local day, in the zone the job's schedule reads.
				pd := perDay[s.id]
				counts := map[string]int{}
				for _, at := range got {
					counts[at.In(pd.zone).Format(time.DateOnly)]++
				}
				for day := dateOf(t, w.days[0], pd.zone); !day.After(dateOf(t, w.days[1], pd.zone)); day = day.AddDate(0, 0, 1) {
					key := day.Format(time.DateOnly)
					if n, want := counts[key], pd.runs(key); n != want {
						t.Errorf("%s ran %d times on %s in %s, want %d", s.id, n, key, pd.zone, want)
					}
				}
				for _, at := range w.want[s.id] {
					if !slices.ContainsFunc(got, utc(at).Equal) {
						t.Errorf("%s did not run at %s (%s)", s.id, at, utc(at).In(pd.zone).Format("2006-01-02 15:04 MST"))
					}
				}
			}

			late := w.leaders[len(w.leaders)-1]
			for job, at := range w.caughtUp {
				r, ok := q.run(job, utc(at))
				switch {
				case !ok:
					t.Errorf("%s's run at %s was never made", job, at)
				case r.by != late.name || !r.onStart || !r.insertedAt.Equal(late.from):
					t.Errorf("%s's run at %s was inserted by %s at %s (on start: %v); want leader %s's catch-up at its start, %s",
						job, at, r.by, r.insertedAt.Format(time.RFC3339), r.onStart, late.name, late.from.Format(time.RFC3339))
				}
			}
			for job, at := range w.handedOver {
				leaders := q.constructedBy[job+" "+utc(at).Format(time.RFC3339)]
				slices.Sort(leaders)
				if !slices.Equal(leaders, []string{"A", "B"}) {
					t.Errorf("%s's run at %s was made by leaders %v; the test means both of the handover to make it", job, at, leaders)
				}
			}
			for _, l := range w.leaders {
				t.Logf("leader %s (%s to %s): inserted %d runs; %d inserts dropped, their run already in the queue",
					l.name, l.from.Format(time.RFC3339), l.to.Format(time.RFC3339), q.inserted[l.name], q.dropped[l.name])
			}
			if q.dropped["B"] == 0 {
				t.Errorf("the handover dropped no insert: the test did not make two leaders insert one run")
			}
		})
	}
}

// checkEvery checks an @every schedule: runs of real time whatever the zone,
// one per period whatever the number of leaders, none missing but while no
// leader led (an @every schedule has no RunOnStart: its runs fall on no
// fixed times to make up) and around a handover, when two leaders' rhythms
// meet.
func checkEvery(t *testing.T, s periodicSpec, runs []insertedRun, leaders []leaderTerm) {
	t.Helper()
	every := s.schedule.Every()
	slices.SortFunc(runs, func(a, b insertedRun) int { return a.scheduledAt.Compare(b.scheduledAt) })
	periods := map[time.Time]int{}
	for i, r := range runs {
		if !r.runAt.IsZero() {
			t.Errorf("%s: run at %s names a RunAt: @every runs fall on no fixed times", s.id, r.scheduledAt)
		}
		if periods[r.scheduledAt.Truncate(every)]++; periods[r.scheduledAt.Truncate(every)] > 1 {
			t.Errorf("%s: two runs in the period of %s", s.id, r.scheduledAt)
		}
		if i == 0 {
			continue
		}
		gap := r.scheduledAt.Sub(runs[i-1].scheduledAt)
		nearChange := false
		for _, l := range leaders {
			for _, change := range []time.Time{l.from, l.to} {
				nearChange = nearChange || (!r.scheduledAt.Before(change) && r.scheduledAt.Sub(change) <= every+time.Minute)
			}
		}
		if gap != every && !nearChange {
			t.Errorf("%s: %s after the run before, at %s; want every %s of real time", s.id, gap, r.scheduledAt, every)
		}
	}
	if len(runs) < 100 {
		t.Errorf("%s: %d runs; the windows hold days of them", s.id, len(runs))
	}
}

// fakeClock is the daemon's Now, moved by the test.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

// insertedRun is a job the fake queue took.
type insertedRun struct {
	job         string // periodic job id
	runAt       time.Time
	scheduledAt time.Time
	insertedAt  time.Time
	by          string // leader
	onStart     bool
}

// fakeQueue is River's job table as far as inserting periodic jobs goes: an
// insert whose unique key is held is dropped.
type fakeQueue struct {
	t             *testing.T
	held          map[string]bool
	runs          []insertedRun
	inserted      map[string]int
	dropped       map[string]int
	constructedBy map[string][]string // "job runAt": the leaders whose constructor made that run
}

func (q *fakeQueue) run(job string, runAt time.Time) (insertedRun, bool) {
	i := slices.IndexFunc(q.runs, func(r insertedRun) bool { return r.job == job && r.runAt.Equal(runAt) })
	if i < 0 {
		return insertedRun{}, false
	}
	return q.runs[i], true
}

// insert calls a job's constructor and inserts what it returns as River's
// enqueuer would: scheduled at nextRunAt unless the constructor says.
func (q *fakeQueue) insert(leader string, s periodicSpec, nextRunAt, now time.Time, onStart bool) {
	args, opts := s.construct()
	if args == nil {
		return // River: ErrNoJobToInsert
	}
	if opts == nil {
		opts = &river.InsertOpts{}
	}
	if !opts.UniqueOpts.ByArgs {
		q.t.Fatalf("%s: a run is not unique by its args: two leaders would insert it twice", s.id)
	}
	scheduled := nextRunAt
	if !opts.ScheduledAt.IsZero() {
		scheduled = opts.ScheduledAt
	}
	enc, err := json.Marshal(args)
	if err != nil {
		q.t.Fatal(err)
	}
	key := "kind=" + args.Kind() + "&args=" + string(enc)
	if p := opts.UniqueOpts.ByPeriod; p != 0 {
		key += "&period=" + scheduled.Truncate(p).UTC().Format(time.RFC3339)
	}
	var runAt time.Time
	switch a := args.(type) {
	case PollArgs:
		runAt = a.RunAt
	case LifecycleArgs:
		runAt = a.RunAt
	case AutoResolveArgs:
		runAt = a.RunAt
	case AutoApproveArgs:
		runAt = a.RunAt
	default:
		q.t.Fatalf("%s: unexpected args %T", s.id, args)
	}
	if !runAt.IsZero() {
		ck := s.id + " " + runAt.UTC().Format(time.RFC3339)
		if !slices.Contains(q.constructedBy[ck], leader) {
			q.constructedBy[ck] = append(q.constructedBy[ck], leader)
		}
	}
	if q.held[key] {
		q.dropped[leader]++
		return
	}
	q.held[key] = true
	q.inserted[leader]++
	q.runs = append(q.runs, insertedRun{job: s.id, runAt: runAt, scheduledAt: scheduled.UTC(), insertedAt: now,
		by: leader, onStart: onStart})
}

// enqueuer is one leader's PeriodicJobEnqueuer: each job's next run.
type enqueuer struct {
	term leaderTerm
	next []time.Time
}

// simulateLeaders runs the leaders' enqueuers over the fake clock, event by
// event, until end.
func simulateLeaders(t *testing.T, specs []periodicSpec, clock *fakeClock, terms []leaderTerm, end time.Time) *fakeQueue {
	t.Helper()
	q := &fakeQueue{t: t, held: map[string]bool{}, inserted: map[string]int{}, dropped: map[string]int{},
		constructedBy: map[string][]string{}}
	var active []*enqueuer
	pending := slices.Clone(terms)
	for steps := 0; ; steps++ {
		if steps > 1_000_000 {
			t.Fatalf("the simulation did not end")
		}
		// The next event: a leader elected, a leader gone, or a leader's timer.
		at, what, which := time.Time{}, "", -1
		consider := func(when time.Time, kind string, i int) {
			if at.IsZero() || when.Before(at) {
				at, what, which = when, kind, i
			}
		}
		for i, p := range pending {
			consider(p.from, "start", i)
		}
		for i, e := range active {
			consider(e.term.to, "stop", i)
			consider(slices.MinFunc(e.next, time.Time.Compare).Add(e.term.timerLate), "fire", i)
		}
		if at.IsZero() || at.After(end) {
			return q
		}
		clock.now = at
		switch what {
		case "start":
			e := &enqueuer{term: pending[which], next: make([]time.Time, len(specs))}
			pending = slices.Delete(pending, which, which+1)
			for i, s := range specs {
				e.next[i] = s.schedule.Next(at)
				if s.runOnStart {
					q.insert(e.term.name, s, at, at, true)
				}
			}
			active = append(active, e)
		case "stop":
			active = slices.Delete(active, which, which+1)
		case "fire":
			e := active[which]
			for i, s := range specs {
				if e.next[i].Before(at.Add(100 * time.Millisecond)) {
					q.insert(e.term.name, s, e.next[i], at, false)
					e.next[i] = s.schedule.Next(e.next[i])
				}
			}
		}
	}
}

// dstDaemon is a replica with the test's config and clock, enough to build
// its periodic jobs.
func dstDaemon(t *testing.T, now func() time.Time) *Daemon {
	t.Helper()
	yaml := string(returnsd.ExampleConfig)
	for from, to := range map[string]string{
		`lifecycle: "5 * * * *"`:     `lifecycle: "CRON_TZ=Europe/Berlin 5 * * * *"`,
		`auto_resolve: "35 * * * *"`: `auto_resolve: "CRON_TZ=America/New_York 30 1 * * *"`,
		`auto_approve: "20 * * * *"`: `auto_approve: "CRON_TZ=Europe/Berlin 20 * * * *"`,
	} {
		if !strings.Contains(yaml, from) {
			t.Fatalf("the example config has no %q", from)
		}
		yaml = strings.Replace(yaml, from, to, 1)
	}
	cfg, err := config.Load(strings.NewReader(yaml+dstSources), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return &Daemon{cfg: cfg, now: now, log: slog.New(slog.DiscardHandler), unusable: map[string]error{}}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	z, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func dateOf(t *testing.T, day string, zone *time.Location) time.Time {
	t.Helper()
	d, err := time.ParseInLocation(time.DateOnly, day, zone)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func firstTimeDiff(got, want []time.Time) string {
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i].Format(time.RFC3339)
		}
		if i < len(want) {
			w = want[i].Format(time.RFC3339)
		}
		if g != w {
			return fmt.Sprintf("run %d: got %q, want %q", i+1, g, w)
		}
	}
	return "(equal)"
}
