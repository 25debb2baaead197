package handlers

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/static"
)

// Pages, CSS and JavaScript go out gzipped to a browser that accepts it
// (Lighthouse's "enable text compression"), and plain to one that does not.
func TestTextGoesOutCompressed(t *testing.T) {
	ta := newTestApp(t).serve()
	c := ta.client()
	ta.register(c, "gzip-reader", "long-enough-password")
	paths := []string{"/", "/login", "/register", "/count", "/profile", "/redis", "/sessions",
		static.Path("htmx.min.js"), static.Path("app.css"), static.Path("pico.classless.min.css"), static.Path("live.js")}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			get := func(encoding string) (*http.Response, []byte) {
				req, _ := http.NewRequest(http.MethodGet, ta.srv.URL+p, nil)
				req.Header.Set("Accept-Encoding", encoding) // set by hand: the client then leaves the body alone
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp, b
			}
			plainResp, plain := get("identity")
			if plainResp.StatusCode != http.StatusOK || plainResp.Header.Get("Content-Encoding") != "" {
				t.Fatalf("without gzip: status %d, Content-Encoding %q", plainResp.StatusCode, plainResp.Header.Get("Content-Encoding"))
			}
			resp, body := get("gzip, deflate, br")
			if got := resp.Header.Get("Content-Encoding"); got != "gzip" {
				t.Fatalf("Content-Encoding %q, want gzip", got)
			}
			if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Accept-Encoding") {
				t.Errorf("Vary %q lacks Accept-Encoding", resp.Header.Values("Vary"))
			}
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			unzipped, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			if len(body)*2 > len(unzipped) {
				t.Errorf("%d bytes gzipped from %d: less than half saved", len(body), len(unzipped))
			}
			if strings.HasPrefix(p, "/static/") && !bytes.Equal(unzipped, plain) {
				t.Errorf("the gzipped file is not the file")
			}
			if _, gz := get("gzip;q=0"); !strings.HasPrefix(p, "/static/") && bytes.HasPrefix(gz, []byte{0x1f, 0x8b}) {
				t.Errorf("gzip;q=0 still got gzip")
			}
		})
	}
}

// Every page describes itself for search engines (Lighthouse SEO).
func TestPagesHaveAMetaDescription(t *testing.T) {
	ta := newTestApp(t).serve()
	c := ta.client()
	for _, p := range []string{"/", "/login", "/register", "/count", "/redis", "/profile"} {
		r := ta.get(c, p)
		if !strings.Contains(r.body, `<meta name="description" content="`) {
			t.Errorf("%s has no meta description", p)
		}
	}
}
