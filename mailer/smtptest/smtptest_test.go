package smtptest_test

import (
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/returnsd/returnsd/mailer/smtptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStopRightAfterStartReturnsAndNothingListens stops servers the moment
// they are started, before their accept loops have run: Stop must return (it
// once waited forever on a loop that started after the server was closed)
// and leave nothing listening.
func TestStopRightAfterStartReturnsAndNothingListens(t *testing.T) {
	t.Parallel()
	for i := range 50 {
		srv, err := smtptest.Start()
		if err != nil {
			t.Fatal(err)
		}
		stopped := make(chan error, 1)
		go func() { stopped <- srv.Stop() }()
		select {
		case err := <-stopped:
			if err != nil {
				t.Fatalf("stop %d: %v", i, err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("stop %d did not return within 15s", i)
		}
		for _, addr := range []string{srv.Addr, srv.StartTLSAddr} {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Fatalf("stop %d: %s still takes connections", i, addr)
			}
		}
	}
}
