package poller

import (
	"sync"
)

// executor is a fixed pool of goroutines running nbhttp's jobs (HTTP
// handlers and close jobs) in the order they were queued. nbio already
// keeps each connection's jobs in order; the pool only bounds how many run
// at once. When every worker is busy and the queue is full, the event loop
// that queues waits: back-pressure on a handshake storm, not a goroutine
// per request.
type executor struct {
	size int
	jobs chan func()
	wg   sync.WaitGroup
	once sync.Once
}

func newExecutor(size int) *executor {
	return &executor{size: size, jobs: make(chan func(), 64*size)}
}

func (e *executor) start() {
	for range e.size {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			for job := range e.jobs {
				job()
			}
		}()
	}
}

// run queues a job. After stop, jobs run on the caller's goroutine so that
// late close jobs are not lost.
func (e *executor) run(job func()) {
	defer func() {
		if recover() != nil { // the queue was closed by stop
			job()
		}
	}()
	e.jobs <- job
}

func (e *executor) stop() {
	e.once.Do(func() {
		close(e.jobs)
		e.wg.Wait()
	})
}
