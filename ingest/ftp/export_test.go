package ftp

import (
	"context"
	"net"
	"time"
)

// SetDial makes s connect (control and data connections) with dial: tests put a
// faulty network between the source and the server. FTP data connections go to
// ports the server names, so a proxy at the server's address alone would not
// see them.
func SetDial(s *Source, dial func(ctx context.Context, network, addr string) (net.Conn, error)) {
	s.dial = dial
}

// SetIdleCheck sets how long a connection may be idle before it is checked with NOOP.
func SetIdleCheck(s *Source, d time.Duration) { s.idleCheck = d }
