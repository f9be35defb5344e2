package bolt

import (
	"sync"
	"sync/atomic"

	bbolt "go.etcd.io/bbolt"
)

// maxBatch caps how many writes share one transaction, so one commit stays short.
const maxBatch = 512

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
}

func newCommitter(db *bbolt.DB) *committer {
	c := &committer{db: db, writes: make(chan pendingWrite), quit: make(chan struct{}), loopDone: make(chan struct{})}
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

func (c *committer) loop() {
	defer close(c.loopDone)
	batch := make([]pendingWrite, 0, maxBatch)
	outcomes := make([]error, 0, maxBatch)
	for {
		select {
		case <-c.quit:
			return
		case w := <-c.writes:
			batch = append(batch[:0], w)
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
		outcomes = outcomes[:0]
		c.commits.Add(1)
		err := c.db.Update(func(tx *bbolt.Tx) error {
			outcomes = outcomes[:0]
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
			for i, w := range batch {
				w.done <- outcomes[i]
			}
			continue
		}
		// One write failed and took the batch with it: run each alone, so only the one that
		// fails reports it.
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
