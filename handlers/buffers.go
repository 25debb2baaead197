package handlers

import (
	"bytes"
	"sync"
)

// Every page is rendered into a buffer and then held again until the
// session is saved. Reusing those buffers instead of growing two new ones
// per request removes about half of what a request allocates (see
// bench_test.go and `go tool task bench`).
var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer keeps a rare huge page from pinning its memory forever.
const maxPooledBuffer = 64 << 10

func getBuffer() *bytes.Buffer { return bufferPool.Get().(*bytes.Buffer) }

func putBuffer(b *bytes.Buffer) {
	if b == nil || b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	bufferPool.Put(b)
}
