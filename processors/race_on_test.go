//go:build race

package processors

// raceEnabled relaxes timing checks: the race detector slows inflating tenfold.
const raceEnabled = true
