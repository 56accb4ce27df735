package storage

import (
	"sync"

	"github.com/opencontainers/go-digest"
)

// cache holds what manifest GETs read, so that a hot manifest costs no system call: the
// tags, the manifest links, and the content of manifests (immutable, by digest). FS is the
// only writer of its root, and it updates the cache after each write of its own; a read
// that missed inserts what it read only if no write happened meanwhile (the generation
// did not change), so that a stale read cannot overwrite a newer write.
type cache struct {
	mu      sync.Mutex
	gen     uint64
	tags    map[string]digest.Digest // repo + ":" + tag
	links   map[string]manifestLink  // repo + "@" + digest
	content map[digest.Digest][]byte
	bytes   int
}

// Bounds of the cache: past them it forgets (maps) or evicts (content) entries at random.
const (
	cacheEntries = 100_000
	cacheBytes   = 64 << 20
)

func newCache() *cache {
	return &cache{tags: map[string]digest.Digest{}, links: map[string]manifestLink{}, content: map[digest.Digest][]byte{}}
}

// generation returns the generation to give to a later insert of what is read now.
func (c *cache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *cache) tag(repo, tag string) (digest.Digest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.tags[repo+":"+tag]
	return d, ok
}

// setTag records a tag; gen is 0 for a write, else the generation of the read.
func (c *cache) setTag(repo, tag string, d digest.Digest, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != 0 && gen != c.gen {
		return
	}
	if gen == 0 {
		c.gen++
	}
	if len(c.tags) >= cacheEntries {
		clear(c.tags)
	}
	c.tags[repo+":"+tag] = d
}

// dropTag forgets a tag, after a write.
func (c *cache) dropTag(repo, tag string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.tags, repo+":"+tag)
}

func (c *cache) link(repo string, d digest.Digest) (manifestLink, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.links[repo+"@"+d.String()]
	return l, ok
}

func (c *cache) setLink(repo string, d digest.Digest, l manifestLink, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != 0 && gen != c.gen {
		return
	}
	if gen == 0 {
		c.gen++
	}
	if len(c.links) >= cacheEntries {
		clear(c.links)
	}
	c.links[repo+"@"+d.String()] = l
}

func (c *cache) dropLink(repo string, d digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.links, repo+"@"+d.String())
}

func (c *cache) manifest(d digest.Digest) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.content[d]
	return b, ok
}

// setManifest keeps a manifest's content; being content-addressed, it is never stale.
func (c *cache) setManifest(d digest.Digest, raw []byte) {
	if len(raw) > cacheBytes/64 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.content[d]; ok {
		return
	}
	for k, v := range c.content {
		if c.bytes+len(raw) <= cacheBytes {
			break
		}
		delete(c.content, k)
		c.bytes -= len(v)
	}
	c.content[d] = raw
	c.bytes += len(raw)
}

// dropManifest forgets a manifest's content, deleted by a collector.
func (c *cache) dropManifest(d digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.content[d]; ok {
		delete(c.content, d)
		c.bytes -= len(b)
	}
}
