// Package bench is the C1M bench harness behind `relay bench`: it starts
// relay nodes (or targets running ones), spreads connections over load
// worker processes (package loadgen) within the open-file limit it finds,
// ramps them up, runs measured phases, ramps down, and writes
// bench-report.json and bench-report.html.
//
// Processes: the orchestrator owns every node and worker process it
// starts and stops them all before Run returns, also on error or
// interrupt. Goroutines: one reader per worker's standard output and one
// sampler; all end with the run.
package bench
