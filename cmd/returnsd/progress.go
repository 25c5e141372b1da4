package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// progressBar draws progress on a terminal for files large enough to wait for.
// Elsewhere (a pipe, a log file, CI) it draws nothing.
type progressBar struct {
	w       io.Writer
	enabled bool
	start   time.Time
	last    time.Time
	drawn   bool
}

const progressMinBytes = 4 << 20

func newProgressBar(w io.Writer) *progressBar {
	f, ok := w.(*os.File)
	return &progressBar{w: w, enabled: ok && term.IsTerminal(int(f.Fd())), start: time.Now()}
}

func (p *progressBar) update(done, total int64) {
	if !p.enabled || total < progressMinBytes || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	frac := float64(done) / float64(total)
	if frac > 1 {
		frac = 1
	}
	const width = 30
	filled := int(frac * width)
	rate := float64(done) / time.Since(p.start).Seconds() / (1 << 20)
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%%  %.1f MiB/s", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), frac*100, rate)
	p.drawn = true
}

func (p *progressBar) done() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
