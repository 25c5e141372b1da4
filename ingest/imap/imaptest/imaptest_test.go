package imaptest_test

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/returnsd/returnsd/ingest/imap/imaptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStopRightAfterStartReturnsAndNothingListens stops in-process servers
// the moment they are started, before their accept loops have run: Stop must
// return and leave nothing listening (imapserver's Close leaves open a
// listener whose Serve had not begun).
func TestStopRightAfterStartReturnsAndNothingListens(t *testing.T) {
	const rounds = 50
	// On one processor a goroutine started by Start runs once the one that
	// started it blocks (or is preempted, after 10ms): Stop, right after
	// Start, comes before the accept loops, every round.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	// A listener left open is a file descriptor more per round, until the
	// garbage collector finalises it: the collector is off meanwhile. (Dialing
	// the address after Stop would be fooled by another process given the port.)
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	before := openFiles(t)
	for i := range rounds {
		// Started and stopped on one goroutine, without a pause between.
		stopped := make(chan error, 1)
		go func() {
			srv, err := imaptest.StartInProcess(imaptest.InProcessOptions{})
			if err != nil {
				stopped <- err
				return
			}
			stopped <- srv.Stop()
		}()
		select {
		case err := <-stopped:
			if err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("round %d: Stop did not return within 15s", i)
		}
	}
	if after := openFiles(t); after-before >= rounds/2 {
		t.Errorf("%d files open after %d rounds, %d before: Stop leaves listeners open", after, rounds, before)
	}
}

// openFiles counts the process's open file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("counting open files: %v", err)
	}
	return len(fds)
}
