package bolt

import (
	"sync"
	"sync/atomic"

	bbolt "go.etcd.io/bbolt"
)

// maxBatch caps how many writes share one transaction, so one commit stays short.
const maxBatch = 512

// maxLater caps the writes queued by doLater; beyond it doLater waits like do, so a flood of
// them is slowed, never dropped, and never grows memory without bound.
const maxLater = 4096

// A write is one store operation inside a shared transaction. It returns the operation's
// outcome (nil, or a dcr error such as dcr.ErrExists) and, separately, a failure that aborts
// the transaction. An operation whose outcome is not nil must not have written anything, so
// that the batch it shares can still commit; and since an aborted batch is retried one
// operation per transaction, it must be safe to run more than once.
type write func(tx *bbolt.Tx) (outcome error, failure error)

type pendingWrite struct {
	fn   write
	done chan error
}

// committer group-commits writes: a single goroutine takes the first write that arrives,
// every other write already waiting (up to maxBatch), runs them in one bbolt transaction and
// commits it with one fsync. No timer: a lone write commits at once, and the writes that
// arrive during a commit form the next batch, so the batch grows with the load.
//
// bbolt's own DB.Batch does the same but waits MaxBatchDelay (10ms by default) for a batch
// to fill, which a lone request would pay on every write.
type committer struct {
	db       *bbolt.DB
	writes   chan pendingWrite // unbuffered: a write is either taken by the loop or not at all
	quit     chan struct{}
	loopDone chan struct{}
	stopOnce sync.Once

	// commits and queued count transactions and writers waiting to be taken: what tests of
	// the batching observe, at the cost of two atomic adds per write.
	commits atomic.Int64
	queued  atomic.Int64

	// later are writes whose callers do not wait for their commit (doLater); the loop adds
	// them to its next batch. wakeLater (one slot) starts a batch when no other write comes.
	laterMu   sync.Mutex
	later     []laterWrite
	wakeLater chan struct{}
}

type laterWrite struct {
	fn     write
	failed func(error)
}

func newCommitter(db *bbolt.DB) *committer {
	c := &committer{db: db, writes: make(chan pendingWrite), quit: make(chan struct{}), loopDone: make(chan struct{}),
		wakeLater: make(chan struct{}, 1)}
	go c.loop()
	return c
}

// do runs fn in the next batch and returns its outcome, or the failure of its transaction.
// It waits for the commit even if the caller's context ends meanwhile: once a write is
// taken it may be durable, and the caller must not believe otherwise.
func (c *committer) do(fn write) error {
	w := pendingWrite{fn: fn, done: make(chan error, 1)}
	c.queued.Add(1)
	select {
	case c.writes <- w:
		c.queued.Add(-1)
	case <-c.quit:
		c.queued.Add(-1)
		return errClosed
	}
	return <-w.done
}

// doLater queues fn for the next batch and returns at once: for writes whose loss in a crash
// costs nothing that matters (a history event), so that their callers do not wait for an
// fsync. A failure of fn or of its transaction goes to failed. Writes queued before a do call
// are committed no later than that call's write, so a reader that first calls flush sees them.
func (c *committer) doLater(fn write, failed func(error)) error {
	select {
	case <-c.quit:
		return errClosed
	default:
	}
	c.laterMu.Lock()
	if len(c.later) >= maxLater {
		c.laterMu.Unlock()
		return c.do(fn)
	}
	c.later = append(c.later, laterWrite{fn, failed})
	c.laterMu.Unlock()
	select {
	case c.wakeLater <- struct{}{}:
	default:
	}
	return nil
}

// flush returns once every write queued by doLater before it is committed.
func (c *committer) flush() error {
	return c.do(func(*bbolt.Tx) (error, error) { return nil, nil })
}

// takeLater empties the doLater queue.
func (c *committer) takeLater() []laterWrite {
	c.laterMu.Lock()
	defer c.laterMu.Unlock()
	later := c.later
	c.later = nil
	return later
}

// commitLater commits writes queued by doLater alone (at stop).
func (c *committer) commitLater(later []laterWrite) {
	for _, lw := range later {
		var outcome error
		err := c.db.Update(func(tx *bbolt.Tx) error {
			var failure error
			outcome, failure = lw.fn(tx)
			return failure
		})
		if err == nil {
			err = outcome
		}
		if err != nil && lw.failed != nil {
			lw.failed(err)
		}
	}
}

func (c *committer) loop() {
	defer close(c.loopDone)
	batch := make([]pendingWrite, 0, maxBatch)
	outcomes := make([]error, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case <-c.quit:
			// The writes nobody waits for are still committed before the file closes.
			c.commitLater(c.takeLater())
			return
		case w := <-c.writes:
			batch = append(batch, w)
		case <-c.wakeLater:
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case w := <-c.writes:
				batch = append(batch, w)
			default:
				break fill
			}
		}
		// Taken after the batch: a write queued by doLater before a do call is in that call's
		// batch or an earlier one.
		later := c.takeLater()
		if len(batch) == 0 && len(later) == 0 {
			continue
		}
		outcomes = outcomes[:0]
		c.commits.Add(1)
		var laterOutcomes []error
		err := c.db.Update(func(tx *bbolt.Tx) error {
			outcomes, laterOutcomes = outcomes[:0], laterOutcomes[:0]
			for _, lw := range later {
				outcome, failure := lw.fn(tx)
				if failure != nil {
					return failure
				}
				laterOutcomes = append(laterOutcomes, outcome)
			}
			for _, w := range batch {
				outcome, failure := w.fn(tx)
				if failure != nil {
					return failure
				}
				outcomes = append(outcomes, outcome)
			}
			return nil
		})
		if err == nil {
			for i, lw := range later {
				if laterOutcomes[i] != nil && lw.failed != nil {
					lw.failed(laterOutcomes[i])
				}
			}
			for i, w := range batch {
				w.done <- outcomes[i]
			}
			continue
		}
		// One write failed and took the batch with it: run each alone, so only the one that
		// fails reports it.
		c.commitLater(later)
		for _, w := range batch {
			var outcome error
			err := c.db.Update(func(tx *bbolt.Tx) error {
				var failure error
				outcome, failure = w.fn(tx)
				return failure
			})
			if err != nil {
				outcome = err
			}
			w.done <- outcome
		}
	}
}

// stop ends the loop after the batch in progress; later writes get errClosed.
func (c *committer) stop() {
	c.stopOnce.Do(func() { close(c.quit) })
	<-c.loopDone
}
