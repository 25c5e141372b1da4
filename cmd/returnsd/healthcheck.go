package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheck is returnsd healthcheck: it GETs the daemon's /healthz and
// succeeds on 200, for a container's HEALTHCHECK (an image FROM scratch has
// no curl). It needs no database. Without --url it reads the config for
// http.listen only, so the check follows the listener wherever the config
// (the mounted one, or the embedded example) puts it.
func (e *env) healthcheck(ctx context.Context, args []string) error {
	flags, cfgPath := e.flags("healthcheck")
	urlFlag := flags.String("url", "", "the URL to GET (default: /healthz on the config's http.listen)")
	timeout := flags.Duration("timeout", 3*time.Second, "how long the whole request may take")
	if err := flags.Parse(args); err != nil {
		return usagef("healthcheck: %v", err)
	}
	if flags.NArg() > 0 {
		return usagef("healthcheck takes no arguments")
	}
	if *timeout <= 0 {
		return usagef("healthcheck: --timeout must be positive")
	}
	target := *urlFlag
	if target == "" {
		if err := e.loadConfig(*cfgPath); err != nil {
			return err
		}
		var err error
		if target, err = healthzURL(e.cfg.HTTP.Listen); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return usagef("healthcheck: %v", err)
	}
	// The daemon is on this machine: never ask a proxy from the environment,
	// and keep no connection once the answer is in.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s: %s", target, resp.Status)
	}
	fmt.Fprintf(e.stdout, "GET %s: %s\n", target, resp.Status)
	return nil
}

// healthzURL is the /healthz of a listener on listen (http.listen) as a
// process on the same machine reaches it: a listener on every interface
// (":8080", "0.0.0.0:8080", "[::]:8080") is reached on loopback.
func healthzURL(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("healthcheck: http.listen %q: %w", listen, err)
	}
	if port == "0" {
		return "", errors.New("healthcheck: http.listen takes any free port (port 0): say where with --url")
	}
	if ip := net.ParseIP(host); host == "" || ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}
