package handlers

import (
	"strings"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/views"
)

// fieldErrors lists every *accounts.FieldError in err's tree (wrapped,
// joined, or both), as errors.As would find the first.
func fieldErrors(err error) []*accounts.FieldError {
	switch e := err.(type) {
	case *accounts.FieldError:
		return []*accounts.FieldError{e}
	case interface{ Unwrap() []error }:
		var out []*accounts.FieldError
		for _, x := range e.Unwrap() {
			out = append(out, fieldErrors(x)...)
		}
		return out
	case interface{ Unwrap() error }:
		return fieldErrors(e.Unwrap())
	}
	return nil
}

func setFieldError(f *views.AuthForm, e *accounts.FieldError) {
	switch e.Field {
	case "username":
		f.Username.Error = e.Message
	case "password":
		f.Password.Error = e.Message
	default:
		f.Error = e.Message
	}
}

// echo bounds what a form shows back of what the user typed.
func echo(s string) string {
	const max = 2 * accounts.UsernameMax
	if len(s) > max {
		return strings.ToValidUTF8(s[:max], "")
	}
	return s
}
