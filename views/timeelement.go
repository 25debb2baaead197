package views

import (
	"context"
	"io"
	"sync"
	"time"
)

// timeElement is <time datetime={ datetime(t) }>{ clock(t) }</time>, and
// timeOfDayElement the same showing { timeOfDay(t) }, written @timeElement(t):
// templ's attribute expression boxes its value and escapes it, and datetime
// and clock each build a string (three allocations per element); these
// write the element's digits in one Write, with no allocation.
// templ drops the space between a call and an element after it: write
// @text(" ") there.
func timeElement(t time.Time) timeTag { return timeTag{t: t} }

func timeOfDayElement(t time.Time) timeTag { return timeTag{t: t, timeOfDay: true} }

type timeTag struct {
	t         time.Time
	timeOfDay bool // show timeOfDay(t), not clock(t)
}

func (e timeTag) Render(_ context.Context, w io.Writer) error {
	t := e.t.UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	if y < 0 || y > 9999 {
		// datetime and clock hold digits, '-', ':', 'T', 'Z', ' ' and
		// "UTC" only: nothing to escape.
		shown := clock(e.t)
		if e.timeOfDay {
			shown = timeOfDay(e.t)
		}
		_, err := io.WriteString(w, `<time datetime="`+datetime(e.t)+`">`+shown+`</time>`)
		return err
	}
	// One Write from a pooled array: bytes written through an interface
	// escape, so an array of this call's own would be an allocation.
	p := scratch.Get().(*[80]byte)
	defer scratch.Put(p)
	b := append(p[:0], `<time datetime="`...)
	b = appendDate(b, y, int(mo), d, 'T')
	b = appendClock(b, h, mi, s)
	b = append(b, `Z">`...)
	if !e.timeOfDay {
		b = appendDate(b, y, int(mo), d, ' ')
	}
	b = appendClock(b, h, mi, s)
	if !e.timeOfDay {
		b = append(b, " UTC"...)
	}
	b = append(b, "</time>"...)
	_, err := w.Write(b)
	return err
}

var scratch = sync.Pool{New: func() any { return new([80]byte) }}

// appendDate appends "2006-01-02" and then sep.
func appendDate(b []byte, y, mo, d int, sep byte) []byte {
	b = appendTwo(appendTwo(b, y/100), y%100)
	return append(appendTwo(append(appendTwo(append(b, '-'), mo), '-'), d), sep)
}

// appendClock appends "15:04:05".
func appendClock(b []byte, h, mi, s int) []byte {
	return appendTwo(append(appendTwo(append(appendTwo(b, h), ':'), mi), ':'), s)
}

func appendTwo(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }
