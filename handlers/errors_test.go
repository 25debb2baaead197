package handlers

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redisconn"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessions"
)

// failureRows are the rows of the table in errors.go, by name: the test
// below reads errors.go, so a row added there and not here fails it.
var failureRows = map[string]failure{
	"failInternal": failInternal, "failRedisDown": failRedisDown, "failRedisMayHaveRun": failRedisMayHaveRun,
	"failRedisNotReplicated": failRedisNotReplicated, "failPasswordsBusy": failPasswordsBusy,
	"failShuttingDown": failShuttingDown, "failNotReady": failNotReady, "failDraining": failDraining,
	"failCrossSite": failCrossSite, "failNotFound": failNotFound, "failMethodNotAllowed": failMethodNotAllowed,
	"failRenewed": failRenewed, "failRevokeOwnSession": failRevokeOwnSession, "failTooLarge": failTooLarge,
	"failFormTimeout": failFormTimeout, "failTooManyStreams": failTooManyStreams, "failMalformedForm": failMalformedForm,
	"failLabSwitchValue": failLabSwitchValue, "failLabNoSession": failLabNoSession, "failLabRead": failLabRead, "failLabNotToken": failLabNotToken,
	"failLabNoSuchSession": failLabNoSuchSession, "failEndedMeanwhile": failEndedMeanwhile, "failRevokedAsRenewed": failRevokedAsRenewed,
}

// Every failure that waiting cures says when to come back (every 503 the
// same 5 s; a 429 when its limit frees), and no other does. Draining is
// the exception: only load balancers ask, and they stop sending to an
// instance that is going away.
func TestEveryUnavailableFailureSaysWhenToRetry(t *testing.T) {
	for _, name := range failureTableRows(t) {
		f, ok := failureRows[name]
		if !ok {
			t.Errorf("%s (errors.go) is missing from failureRows, so no test checks its Retry-After", name)
			continue
		}
		h := http.Header{}
		f.setHeaders(h)
		got := h.Get("Retry-After")
		switch {
		case name == "failDraining":
			if got != "" {
				t.Errorf("%s: Retry-After %q, want none", name, got)
			}
		case f.Status == http.StatusServiceUnavailable:
			if got != "5" {
				t.Errorf("%s: %d with Retry-After %q, want 5", name, f.Status, got)
			}
		case f.Status == http.StatusTooManyRequests:
			if got == "" {
				t.Errorf("%s: %d without Retry-After", name, f.Status)
			}
		case got != "":
			t.Errorf("%s: %d with Retry-After %q, on a failure a wait does not cure", name, f.Status, got)
		}
	}
}

// failureTableRows names every package-level variable errors.go sets to a
// failure literal.
func failureTableRows(t *testing.T) []string {
	t.Helper()
	file, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.VAR {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, v := range vs.Values {
				if lit, ok := v.(*ast.CompositeLit); ok {
					if id, ok := lit.Type.(*ast.Ident); ok && id.Name == "failure" {
						names = append(names, vs.Names[i].Name)
					}
				}
			}
		}
	}
	if len(names) < len(failureRows) {
		t.Fatalf("errors.go has %d failure rows, failureRows %d: the table moved?", len(names), len(failureRows))
	}
	return names
}

// A stream asked for while the server stops (its hub closed) is a 503 with
// Retry-After: the browser's EventSource gives up on a 503, the page's
// script waits and tries again.
func TestLiveWhileStoppingIs503WithRetryAfter(t *testing.T) {
	ta := newLiveApp(t, redistest.Start(t), "a")
	c := browser(t, firefoxLinux)
	ta.get(c, "/count") // a session, so the stream subscribes
	ta.app.Live.Close()
	r := ta.get(c, "/live")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "5" {
		t.Errorf("/live after the hub closed: %d, Retry-After %q; want 503 with Retry-After 5", r.status, r.header.Get("Retry-After"))
	}
}

// A write refused because the Sentinel master has no replica in sync was
// never sent: the page says nothing was changed, which is true.
func TestAWriteRefusedForWantOfAReplicaChangedNothing(t *testing.T) {
	err := fmt.Errorf("sessions: incr views: %w", redisconn.ErrNoReplica)
	if f := failureOf(err, true); f != failRedisDown {
		t.Errorf("%d %q, want %q", f.Status, f.Message, failRedisDown.Message)
	}
}

// A write the Sentinel master applied and no replica acknowledged in time
// (the group commit) may be discarded by a failover, or kept: the page says
// so, whether or not the request's method says it wrote.
func TestAWriteNoReplicaConfirmedMayOrMayNotBeSaved(t *testing.T) {
	err := fmt.Errorf("sessions: incr views: %w", redisconn.ErrNotReplicated)
	for _, wrote := range []bool{true, false} {
		if f := failureOf(err, wrote); f != failRedisNotReplicated || !strings.Contains(f.Message, "may or may not have been saved") {
			t.Errorf("wrote %v: %d %q, want %q", wrote, f.Status, f.Message, failRedisNotReplicated.Message)
		}
	}
}

// The 409 for a renewed token tells a browser that holds only a copy of the
// old ID how long it will be told so: as long as a request may still be in
// flight after a renewal (sessions.RenewalInFlight), not the marker's minute.
func TestRenewedPageSaysHowLongACopyIsToldSo(t *testing.T) {
	want := fmt.Sprintf("for up to %d seconds its pages say this", int(sessions.RenewalInFlight/time.Second))
	if !strings.Contains(failRenewed.Message, want) {
		t.Errorf("the 409's words: %q\nwant them to say %q", failRenewed.Message, want)
	}
}
