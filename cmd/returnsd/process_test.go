package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemonProc is a `returnsd run` child process of a test: the real binary
// (buildReturnsd), its log in a file, its database connections named after
// it (application_name) so pg_stat_activity tells whose they are.
type daemonProc struct {
	name     string
	cmd      *exec.Cmd
	logPath  string
	exited   chan struct{}
	waitErr  error
	clientID string // River's name for it (river_leader, river_job.attempted_by)
	stopped  time.Time
}

// startDaemon starts `returnsd run --config config` against the database at
// url and waits until it runs. The test's cleanup kills it if it still does.
func startDaemon(t *testing.T, bin, config, url, name string) *daemonProc {
	t.Helper()
	p := &daemonProc{name: name, logPath: filepath.Join(t.TempDir(), name+".log"), exited: make(chan struct{})}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "run", "--config", config)
	p.cmd.Env = []string{"DATABASE_URL=" + withParam(url, "application_name", name), "USER=tester",
		"PATH=" + os.Getenv("PATH"), "TMPDIR=" + os.TempDir()}
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		if !p.done() {
			p.cmd.Process.Kill()
			select {
			case <-p.exited:
			case <-time.After(30 * time.Second):
				t.Errorf("%s did not die within 30 s of SIGKILL", p.name)
			}
		}
		if t.Failed() {
			t.Logf("the end of %s's log:\n%s", p.name, p.logTail(40))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if line := p.logLine(`msg="returnsd running"`); line != "" {
			p.clientID = logValue(line, "client_id")
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited as it started (%v):\n%s", name, p.waitErr, p.logTail(30))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not say it runs within 60 s:\n%s", name, p.logTail(30))
		}
	}
}

func (p *daemonProc) done() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// signal sends sig and notes when.
func (p *daemonProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	p.stopped = time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("signal %s: %v", p.name, err)
	}
}

// wait waits for the process to exit, at most within, and returns its exit
// status (-1 when a signal ended it) and how long after the last signal it
// exited.
func (p *daemonProc) wait(t *testing.T, within time.Duration) (int, time.Duration) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(within):
		t.Fatalf("%s did not exit within %s:\n%s", p.name, within, p.logTail(30))
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(p.stopped)
}

func (p *daemonProc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// logLine is the first line of the log holding s, or "".
func (p *daemonProc) logLine(s string) string {
	for _, line := range strings.Split(p.log(), "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

func (p *daemonProc) logTail(n int) string {
	lines := strings.Split(strings.TrimRight(p.log(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// logValue is the value of key=value on a text log line (a value without spaces).
func logValue(line, key string) string {
	_, v, ok := strings.Cut(line, " "+key+"=")
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, " ")
	return v
}

// withParam adds a query parameter to a database URL.
func withParam(url, key, value string) string {
	if strings.Contains(url, "?") {
		return url + "&" + key + "=" + value
	}
	return url + "?" + key + "=" + value
}

// eventually waits until cond holds, checking every 100 ms, and fails with
// what when it does not within deadline.
func eventually(t *testing.T, deadline time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %s", what, deadline)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFor waits until state returns "" (done), checking every 100 ms, and
// fails with what and the last state it returned when that takes longer
// than deadline.
func waitFor(t *testing.T, deadline time.Duration, what string, state func() string) {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		s := state()
		if s == "" {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: not within %s; %s", what, deadline, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
