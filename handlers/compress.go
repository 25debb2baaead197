package handlers

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"sync"
)

// Pages are gzipped (5-10 KB shrink to a fifth). BREACH does not apply: no
// page holds a secret (no CSRF token; session keys are cut short).

// minCompressed: below this a page is not worth a gzip header and the CPU.
const minCompressed = 1 << 10

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // a page is built per request: speed over the last few percent
	return w
}}

// compressed is body gzipped into out, headers set, when the client accepts
// it and it is worth it; else body unchanged.
func compressed(h http.Header, accepts bool, body []byte, out *bytes.Buffer) []byte {
	h[hdrVary] = append(h[hdrVary], "Accept-Encoding")
	if len(body) < minCompressed || !accepts {
		return body
	}
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(out)
	if _, err := zw.Write(body); err != nil {
		return body
	}
	if err := zw.Close(); err != nil {
		return body
	}
	h[hdrContentEncoding] = gzipEncoding
	return out.Bytes()
}
