package main

// ---- Idle phase (issue 9) ---------------------------------------------------
//
// benchIdle measures what `returnsd run` costs when there is nothing to do:
// it starts the real binary with 100 sources (empty local folders of the two
// brands, half polled every 30 seconds, half on */5-minute crons at
// different minutes) against a fresh database, lets it settle for 10 s after
// it runs (startup runs the crons' catch-up polls) and then idle for 60 s,
// and prints its CPU use over those 60 s (utime+stime from /proc/<pid>/stat,
// as a share of one core) and its peak RSS (VmHWM), with the targets: under
// 1% of one core and under 100 MB. It also prints what its database sessions
// cost the server over the same time, and checks that the sources were
// polled meanwhile (a daemon that polls nothing idles cheaply).

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	root "github.com/returnsd/returnsd"
	"github.com/returnsd/returnsd/internal/pgtest"
)

const (
	idleSources = 100
	idleWindow  = 60 * time.Second
	idleSettle  = 10 * time.Second // after it says it runs, before the window
	// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
	// 100 on every Linux the bench runs on (sysconf needs cgo).
	clockTicks = 100
)

func benchIdle(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "returnsd-bench-idle-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "returnsd")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/returnsd").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v: %s", err, out)
	}
	srv, err := pgtest.Start(ctx)
	if err != nil {
		return err
	}
	defer srv.Stop()
	admin, err := pgx.Connect(ctx, srv.URL)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE idle"); err != nil {
		return err
	}
	url := strings.Replace(srv.URL, "/postgres?", "/idle?", 1)
	if _, _, err := returnsd(ctx, bin, url, "migrate"); err != nil {
		return err
	}

	config, err := writeIdleConfig(dir)
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, "run.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "run", "--config", config)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+url+"&application_name=returnsd-idle", "RETURNSD_CONFIG=")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()
	fail := func(err error) error {
		log, _ := os.ReadFile(logPath)
		return fmt.Errorf("idle phase: %w\n%s", err, log)
	}

	// Running: it says so once its queue and listener are up.
	for deadline := time.Now().Add(time.Minute); ; {
		if log, _ := os.ReadFile(logPath); strings.Contains(string(log), `msg="returnsd running"`) {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			return fail(fmt.Errorf("returnsd run exited at start: %v", err))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("returnsd run did not start within a minute"))
		}
	}
	// Startup is not idling: River elects a leader, which inserts the cron
	// sources' catch-up runs (RunOnStart), and those 50 polls run at once.
	select {
	case err := <-exited:
		exited <- err
		return fail(fmt.Errorf("returnsd run exited at start: %v", err))
	case <-time.After(idleSettle):
	}
	began := time.Now()
	cpu0, err := cpuTicks(cmd.Process.Pid)
	if err != nil {
		return err
	}
	dbCPU0, err := sessionsCPU(ctx, admin, "returnsd-idle")
	if err != nil {
		return err
	}
	select {
	case err := <-exited:
		exited <- err
		return fail(fmt.Errorf("returnsd run exited while idle: %v", err))
	case <-time.After(idleWindow):
	}
	cpu1, err := cpuTicks(cmd.Process.Pid)
	if err != nil {
		return err
	}
	dbCPU1, err := sessionsCPU(ctx, admin, "returnsd-idle")
	if err != nil {
		return err
	}
	took := time.Since(began)
	hwm, err := statusKB(cmd.Process.Pid, "VmHWM")
	if err != nil {
		return err
	}

	db, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close(ctx)
	var polls, sources int
	err = db.QueryRow(ctx, `SELECT count(*), count(DISTINCT args->>'source') FROM river_job
		WHERE kind = 'poll' AND state = 'completed' AND finalized_at >= $1`, began).Scan(&polls, &sources)
	if err != nil {
		return err
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			return fail(fmt.Errorf("returnsd run after SIGTERM: %v", err))
		}
	case <-time.After(time.Minute):
		return fail(fmt.Errorf("returnsd run did not stop within a minute of SIGTERM"))
	}

	share := func(ticks int64) float64 {
		return float64(ticks) / clockTicks / took.Seconds() * 100
	}
	cpu, rss := share(cpu1-cpu0), float64(hwm)/1024
	fmt.Printf("idle returnsd run, %d sources (%d every 30s, %d on */5 crons), from %s after it ran for %s: %d polls of %d sources\n",
		idleSources, idleSources/2, idleSources/2, idleSettle, took.Round(time.Millisecond), polls, sources)
	fmt.Printf("idle CPU: %.2f%% of one core (target < 1%%); peak RSS: %.1f MB (target < 100 MB)\n", cpu, rss)
	fmt.Printf("idle: its database sessions used %.2f%% of one core of the server meanwhile\n", share(dbCPU1-dbCPU0))
	if polls < idleSources/2 {
		return fail(fmt.Errorf("only %d polls in %s: the sources every 30s were not polled; the figures mean nothing", polls, took))
	}
	if cpu >= 1 || rss >= 100 {
		fmt.Println("bench: a target was missed")
	}
	return nil
}

// writeIdleConfig writes the example config (two brands) with 100 sources,
// each its own empty folder, and returns its path.
func writeIdleConfig(dir string) (string, error) {
	var b strings.Builder
	b.WriteString(strings.Replace(string(root.ExampleConfig), "127.0.0.1:8080", "127.0.0.1:0", 1))
	fmt.Fprintf(&b, "\nspool_dir: %s\nsources:\n", filepath.Join(dir, "spool"))
	for i := range idleSources {
		folder := filepath.Join(dir, "sources", fmt.Sprintf("s%03d", i))
		if err := os.MkdirAll(folder, 0o755); err != nil {
			return "", err
		}
		brand, schedule := "acme", "@every 30s"
		if i%2 == 1 {
			brand, schedule = "globex", fmt.Sprintf("%d-59/5 * * * *", i%5) // */5, at five different minutes
		}
		fmt.Fprintf(&b, "  - {name: s%03d, brand: %s, type: localdir, path: %s, schedule: %q}\n", i, brand, folder, schedule)
	}
	path := filepath.Join(dir, "idle.yaml")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// cpuTicks is a process's user and system time, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// the fields after it start after the last ')'.
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(fields[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	return utime + stime, nil
}

// statusKB reads a "kB" line of /proc/<pid>/status, such as VmHWM.
func statusKB(pid int, key string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, key)
}

// sessionsCPU is the CPU time, in clock ticks, of the server processes of
// the sessions named app (the server runs on this machine).
func sessionsCPU(ctx context.Context, admin *pgx.Conn, app string) (int64, error) {
	rows, err := admin.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = $1", app)
	if err != nil {
		return 0, err
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return 0, err
	}
	var total int64
	for _, pid := range pids {
		if ticks, err := cpuTicks(int(pid)); err == nil { // a session may end meanwhile
			total += ticks
		}
	}
	return total, nil
}
