package views

import (
	"context"
	"html"
	"io"
)

// text is templ's { s } for a string, written @text(s): { s } costs a
// fmt.Sprint and two allocations per value (templ.JoinStringErrs) before
// html.EscapeString; text writes the same escaped bytes with neither. Keep
// { s } where the next character is '.', '(' or '[': templ would read it as
// part of the Go expression after @.
type text string

func (t text) Render(_ context.Context, w io.Writer) error {
	s := string(t)
	sw, ok := w.(io.StringWriter)
	if !ok {
		_, err := io.WriteString(w, html.EscapeString(s))
		return err
	}
	plain := 0 // s[plain:i] is still to be written as it is
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '\'':
			esc = "&#39;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&#34;"
		default:
			continue
		}
		if _, err := sw.WriteString(s[plain:i]); err != nil {
			return err
		}
		if _, err := sw.WriteString(esc); err != nil {
			return err
		}
		plain = i + 1
	}
	_, err := sw.WriteString(s[plain:])
	return err
}
