package mesh

import "fmt"

func (b *MeshBus) DiagQueue() string {
	q := b.out
	q.mu.Lock()
	defer q.mu.Unlock()
	first, last, n := -1, -1, 0
	for i, e := range q.batch[:cap(q.batch)] {
		if e.Key != "" {
			if first < 0 {
				first = i
			}
			last = i
			n++
		}
	}
	return fmt.Sprintf("queue len %d cap %d; batch len %d cap %d stale %d in [%d,%d]", len(q.queue), cap(q.queue), len(q.batch), cap(q.batch), n, first, last)
}
