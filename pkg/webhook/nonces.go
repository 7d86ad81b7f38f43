package webhook

import (
	"container/heap"
	"sync"
	"time"
)

// NonceStore remembers the nonces of verified requests.
//
// Seen records nonce until the time until and reports whether it was
// already recorded with an until not yet past. Check and record are one
// atomic step: of concurrent calls with one nonce, at most one reports
// false. An error means the store could not answer; the Verifier then
// rejects the request without classing it as a replay.
type NonceStore interface {
	Seen(nonce string, until time.Time) (bool, error)
}

// MemoryNonces is a NonceStore in memory, for one process. Every call
// forgets the nonces whose time has passed, so it holds only those that
// still matter. The zero value is ready, with time.Now as its clock. It is
// safe for concurrent use.
type MemoryNonces struct {
	// Now is the clock expiry is judged by; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	until map[string]time.Time
	queue expiryQueue
}

// Seen implements NonceStore; it never fails.
func (s *MemoryNonces) Seen(nonce string, until time.Time) (bool, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	t := now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(t)
	if _, ok := s.until[nonce]; ok {
		return true, nil
	}
	if s.until == nil {
		s.until = make(map[string]time.Time)
	}
	s.until[nonce] = until
	heap.Push(&s.queue, expiry{nonce, until})
	return false, nil
}

// Len returns how many nonces s holds, expired ones not yet forgotten
// included.
func (s *MemoryNonces) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.until)
}

// prune forgets the nonces whose until is before t; s.mu is held.
func (s *MemoryNonces) prune(t time.Time) {
	for len(s.queue) > 0 && s.queue[0].until.Before(t) {
		e := heap.Pop(&s.queue).(expiry)
		delete(s.until, e.nonce)
	}
}

type expiry struct {
	nonce string
	until time.Time
}

// expiryQueue is a min-heap of expiries, earliest first; each nonce is in it
// once, as in the map.
type expiryQueue []expiry

func (q expiryQueue) Len() int           { return len(q) }
func (q expiryQueue) Less(i, j int) bool { return q[i].until.Before(q[j].until) }
func (q expiryQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *expiryQueue) Push(x any)        { *q = append(*q, x.(expiry)) }
func (q *expiryQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = expiry{}
	*q = old[:len(old)-1]
	return e
}
