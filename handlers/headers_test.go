package handlers

import (
	"net/http"
	"testing"
)

// The names the hot path uses as map keys are what Header.Get and Set
// would have made of them; a name not in canonical form would never match.
func TestHeaderNamesAreCanonical(t *testing.T) {
	for _, name := range headerNames {
		if c := http.CanonicalHeaderKey(name); c != name {
			t.Errorf("header name %q: canonical form is %q", name, c)
		}
	}
}
