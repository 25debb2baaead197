package views

import (
	"context"
	"io"
	"strconv"
	"time"
)

// agoElement is ago(t, now) and untilElement until(t, now), each in a span
// that names t (AttrAgo, AttrUntil): static/live.js rewrites the text as
// time passes, so "3 min ago" or "in 29 min" stays true on a page left open.
func agoElement(t, now time.Time) relativeTag {
	return relativeTag{attr: AttrAgo, t: t, text: ago(t, now)}
}

func untilElement(t, now time.Time) relativeTag {
	return relativeTag{attr: AttrUntil, t: t, text: until(t, now)}
}

type relativeTag struct {
	attr  string
	t     time.Time
	text  string
	paren bool
}

// inParens is e in parentheses, where templ would read "(@agoElement(t,
// now))" as text.
func inParens(e relativeTag) relativeTag {
	e.paren = true
	return e
}

// sinceElement is agoElement(t, now) in parentheses, for a text already made
// as ago(t, now) (the footer's badge, kept by its text: fixed.go).
func sinceElement(t time.Time, since string) relativeTag {
	return relativeTag{attr: AttrAgo, t: t, text: since, paren: true}
}

// Render writes the element in one Write, as timeTag does; the attribute's
// value and the text hold nothing to escape.
func (e relativeTag) Render(_ context.Context, w io.Writer) error {
	t := e.t.UTC()
	y, mo, d := t.Date()
	p := scratch.Get().(*[80]byte)
	defer scratch.Put(p)
	b := p[:0]
	if e.paren {
		b = append(b, '(')
	}
	if y < 0 || y > 9999 {
		b = append(b, e.text...) // no moment live.js could read
	} else {
		h, mi, s := t.Clock()
		b = append(append(append(b, `<span `...), e.attr...), `="`...)
		b = appendClock(appendDate(b, y, int(mo), d, 'T'), h, mi, s)
		b = append(append(append(b, `Z">`...), e.text...), "</span>"...)
	}
	if e.paren {
		b = append(b, ')')
	}
	_, err := w.Write(b)
	return err
}

// nowMeta is the moment the page was drawn, on the server's clock: live.js
// counts relative times from it, so a browser whose clock is off still
// shows what the server would.
type nowMeta time.Time

func (m nowMeta) Render(_ context.Context, w io.Writer) error {
	t := time.Time(m).UTC()
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		return nil // live.js then takes the browser's clock
	}
	h, mi, s := t.Clock()
	p := scratch.Get().(*[80]byte)
	defer scratch.Put(p)
	b := append(p[:0], `<meta name="`+metaNow+`" content="`...)
	b = appendClock(appendDate(b, y, int(mo), d, 'T'), h, mi, s)
	_, err := w.Write(append(b, `Z"/>`...))
	return err
}

// lifetime is a session lifetime as people say it ("24 h", "90 min"),
// written @lifetime(d): a number under 100 is strconv's own string, so
// unlike "24" + " h" it costs no allocation.
type lifetime time.Duration

func (l lifetime) Render(_ context.Context, w io.Writer) error {
	d := time.Duration(l)
	var n int64
	var unit string
	switch {
	case d > 0 && d%time.Hour == 0:
		n, unit = int64(d/time.Hour), " h"
	case d > 0 && d%time.Minute == 0:
		n, unit = int64(d/time.Minute), " min"
	default:
		_, err := io.WriteString(w, d.String())
		return err
	}
	if _, err := io.WriteString(w, strconv.FormatInt(n, 10)); err != nil {
		return err
	}
	_, err := io.WriteString(w, unit)
	return err
}
