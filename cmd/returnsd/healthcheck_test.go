package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealthcheck(t *testing.T) {
	t.Parallel()

	// healthcheck needs no database: its cli has none. The daemon is a
	// server answering /healthz with status.
	setup := func(t *testing.T, status int) (*cli, *httptest.Server) {
		t.Helper()
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
		})
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return &cli{t: t, env: map[string]string{}}, srv
	}

	t.Run("SucceedsWhenTheDaemonAnswers200", func(t *testing.T) {
		t.Parallel()
		c, srv := setup(t, http.StatusOK)
		out := c.mustRun("healthcheck", "--url", srv.URL+"/healthz")
		if want := "GET " + srv.URL + "/healthz: 200 OK\n"; out != want {
			t.Errorf("stdout %q, want %q", out, want)
		}
	})

	t.Run("FailsWithExitStatus1WhenTheDaemonAnswersAnythingElse", func(t *testing.T) {
		t.Parallel()
		c, srv := setup(t, http.StatusServiceUnavailable)
		o := c.run("healthcheck", "--url", srv.URL+"/healthz")
		checkOneLineError(t, o, 1, "healthcheck: GET "+srv.URL+"/healthz: 503 Service Unavailable")
	})

	t.Run("FailsWithExitStatus1WhenNothingListens", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		o := (&cli{t: t, env: map[string]string{}}).run("healthcheck", "--url", "http://"+addr+"/healthz")
		checkOneLineError(t, o, 1, "connection refused")
	})

	t.Run("GivesUpAtTheTimeoutWhenTheDaemonDoesNotAnswer", func(t *testing.T) {
		t.Parallel()
		stuck := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-stuck:
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(stuck) })
		start := time.Now()
		o := (&cli{t: t, env: map[string]string{}}).run("healthcheck", "--url", srv.URL+"/healthz", "--timeout", "200ms")
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("took %v with --timeout 200ms", took)
		}
		checkOneLineError(t, o, 1, "context deadline exceeded")
	})

	t.Run("FindsTheDaemonOnTheConfigsListenerOverLoopback", func(t *testing.T) {
		t.Parallel()
		c, srv := setup(t, http.StatusOK)
		_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		// ":PORT" serves every interface, as in a container; the check asks loopback.
		cfg := writeConfig(t, t.TempDir(), "listen: 127.0.0.1:8080", `listen: ":`+port+`"`)
		want := "GET http://127.0.0.1:" + port + "/healthz: 200 OK\n"
		if out := c.mustRun("healthcheck", "--config", cfg); out != want {
			t.Errorf("with --config: stdout %q, want %q", out, want)
		}
		c.env["RETURNSD_CONFIG"] = cfg
		if out := c.mustRun("healthcheck"); out != want {
			t.Errorf("with RETURNSD_CONFIG: stdout %q, want %q", out, want)
		}
	})

	t.Run("TakesNoArguments", func(t *testing.T) {
		t.Parallel()
		o := (&cli{t: t, env: map[string]string{}}).run("healthcheck", "http://127.0.0.1:8080/healthz")
		checkOneLineError(t, o, 2, "healthcheck takes no arguments")
	})
}

func TestHealthzURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ listen, want, err string }{
		{listen: "127.0.0.1:8080", want: "http://127.0.0.1:8080/healthz"}, // the default
		{listen: ":8080", want: "http://127.0.0.1:8080/healthz"},
		{listen: "0.0.0.0:9090", want: "http://127.0.0.1:9090/healthz"},
		{listen: "[::]:8080", want: "http://[::1]:8080/healthz"},
		{listen: "[::1]:8080", want: "http://[::1]:8080/healthz"},
		{listen: "localhost:8080", want: "http://localhost:8080/healthz"},
		{listen: "10.1.2.3:8080", want: "http://10.1.2.3:8080/healthz"},
		{listen: "127.0.0.1:0", err: "port 0"},
		{listen: "8080", err: `http.listen "8080"`},
	} {
		got, err := healthzURL(tc.listen)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("healthzURL(%q): error %v, want one saying %q", tc.listen, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("healthzURL(%q) = %q, %v; want %q", tc.listen, got, err, tc.want)
		}
	}
}
