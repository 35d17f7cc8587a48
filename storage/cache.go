package storage

import "sync"

// bodyCache keeps recently served bill bodies in memory: bill/byid is the
// hottest call, and a bbolt read transaction per request cost more than the
// rest of the store lookup (a few allocations for the transaction and the
// cursor). Bodies change only through PutBill, which invalidates its id
// once the change is committed.
type bodyCache struct {
	mu   sync.RWMutex
	m    map[string][]byte
	size int
	gen  uint64 // bumped by every invalidation
}

// bodyCacheMax bounds the bytes cached; a shop's open bills fit easily.
const bodyCacheMax = 8 << 20

func newBodyCache() *bodyCache { return &bodyCache{m: map[string][]byte{}} }

func (c *bodyCache) get(id string) ([]byte, bool) {
	c.mu.RLock()
	b, ok := c.m[id]
	c.mu.RUnlock()
	return b, ok
}

// generation is read before a store read whose result may be cached.
func (c *bodyCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put caches body unless an invalidation happened since gen was read: the
// store read might then have seen the body before the change.
func (c *bodyCache) put(id string, body []byte, gen uint64) {
	if len(body) > bodyCacheMax/16 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if old, ok := c.m[id]; ok {
		c.size -= len(old)
	}
	for k, v := range c.m { // random eviction, rarely needed
		if c.size+len(body) <= bodyCacheMax {
			break
		}
		delete(c.m, k)
		c.size -= len(v)
	}
	c.m[id] = body
	c.size += len(body)
}

func (c *bodyCache) invalidate(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if old, ok := c.m[id]; ok {
		delete(c.m, id)
		c.size -= len(old)
	}
}
