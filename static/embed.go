// Package static embeds the front-end files (vendored htmx and Pico CSS, the
// app's CSS and live.js), so the binary works offline with no build step.
package static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

//go:embed *.js *.css
var files embed.FS

// versions maps a file name to a short hash of its content, so a URL changes
// whenever the file does and browsers may cache it for a year.
var versions = func() map[string]string {
	v := map[string]string{}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		b, err := files.ReadFile(e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		v[e.Name()] = hex.EncodeToString(sum[:4])
	}
	return v
}()

// Path returns the cache-busting URL of an embedded file, for use in views.
func Path(name string) string {
	v, ok := versions[name]
	if !ok {
		panic("static: no embedded file " + name)
	}
	return "/static/" + name + "?v=" + v
}

// gzipped holds every file compressed once at start-up: 130 KB go out as 35 KB.
var gzipped = func() map[string][]byte {
	z := map[string][]byte{}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		b, err := files.ReadFile(e.Name())
		if err != nil {
			panic(err)
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if _, err := zw.Write(b); err != nil {
			panic(err)
		}
		if err := zw.Close(); err != nil {
			panic(err)
		}
		z[e.Name()] = buf.Bytes()
	}
	return z
}()

// Handler serves the embedded files under /static/ (no directory listing); a
// request naming the current version is cached as immutable.
func Handler() http.Handler {
	fileServer := http.StripPrefix("/static/", http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/static/")
		v, ok := versions[name]
		if !ok {
			// Only the embedded files, never a directory listing.
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		if r.URL.Query().Get("v") == v {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		h.Add("Vary", "Accept-Encoding")
		if !AcceptsGzip(r) {
			fileServer.ServeHTTP(w, r)
			return
		}
		h.Set("Content-Encoding", "gzip")
		h.Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
		h.Set("ETag", `"`+v+`-gz"`)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(gzipped[name]))
	})
}

// AcceptsGzip reports whether the request's Accept-Encoding allows gzip
// (a "gzip;q=0" refuses it).
func AcceptsGzip(r *http.Request) bool {
	for _, v := range r.Header["Accept-Encoding"] { // canonical: Values canonicalizes it on every call
		for part := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.TrimSpace(name) != "gzip" {
				continue
			}
			q, err := strconv.ParseFloat(strings.TrimPrefix(strings.ReplaceAll(params, " ", ""), "q="), 64)
			return params == "" || err != nil || q > 0
		}
	}
	return false
}
