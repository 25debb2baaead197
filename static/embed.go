// Package static holds the vendored front-end files (htmx, Pico CSS) and the
// app's own CSS and one hand-written script (live.js: the shared event
// stream), embedded so the binary works offline. There is no build step.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strings"
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

// Handler serves the embedded files under /static/, and nothing else (no
// directory listing). A request that names the current version is cached
// as immutable; any other is revalidated.
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
		if r.URL.Query().Get("v") == v {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		fileServer.ServeHTTP(w, r)
	})
}
