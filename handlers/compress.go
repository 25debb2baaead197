package handlers

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"sync"
)

// Pages go out gzipped to browsers that accept it: a page is 5-10 KB of
// repetitive HTML and shrinks to a fifth. BREACH does not apply: no page
// holds a secret (CSRF is Sec-Fetch-Site, not a token; session keys are
// cut short).

// minCompressed: below this a page is not worth a gzip header and the CPU.
const minCompressed = 1 << 10

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // a page is built per request: speed over the last few percent
	return w
}}

// compressed is body gzipped into out when the client accepts it and the
// body is worth it, with the headers set; else body unchanged. Pages are
// compressed as they leave (bufferedWriter.send), after the trace is
// filled in.
func compressed(h http.Header, accepts bool, body []byte, out *bytes.Buffer) []byte {
	h.Add("Vary", "Accept-Encoding")
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
	h.Set("Content-Encoding", "gzip")
	return out.Bytes()
}
