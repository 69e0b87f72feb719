//go:build race

package codec

// raceEnabled skips allocation counts: under the race detector sync.Pool
// drops items on purpose, so pooled helpers allocate.
const raceEnabled = true
