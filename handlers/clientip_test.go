package handlers

import (
	"net/http/httptest"
	"testing"
)

func TestClientIP(t *testing.T) {
	proxies, err := ParseTrustedProxies("10.0.0.0/8, 192.0.2.1 ,2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		trusted Proxies
		remote  string
		xff     []string
		want    string
	}{
		{"no trusted proxies: the peer, whatever the header says", nil, "203.0.113.5:4321", []string{"198.51.100.1"}, "203.0.113.5"},
		{"an untrusted peer cannot forge the header", proxies, "203.0.113.5:4321", []string{"198.51.100.1"}, "203.0.113.5"},
		{"a trusted proxy: the address it saw", proxies, "10.1.2.3:4321", []string{"198.51.100.1"}, "198.51.100.1"},
		{"the right-most untrusted hop, not what the client wrote", proxies, "10.1.2.3:4321", []string{"6.6.6.6, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"several header lines read as one list", proxies, "10.1.2.3:4321", []string{"6.6.6.6, 198.51.100.1", "192.0.2.1"}, "198.51.100.1"},
		{"only trusted hops: the left-most", proxies, "10.1.2.3:4321", []string{"10.4.4.4, 10.5.5.5"}, "10.4.4.4"},
		{"no header from a trusted proxy: the proxy", proxies, "10.1.2.3:4321", nil, "10.1.2.3"},
		{"garbage stops at the last hop we can vouch for", proxies, "10.1.2.3:4321", []string{"198.51.100.1, not-an-ip"}, "10.1.2.3"},
		{"a hop with a port", proxies, "10.1.2.3:4321", []string{"198.51.100.1:5555"}, "198.51.100.1"},
		{"IPv6 hops", proxies, "[2001:db8::1]:443", []string{"2001:db8::2, [2a00:1450::1]"}, "2a00:1450::1"},
		{"a v4-mapped peer is the v4 address", proxies, "[::ffff:10.1.2.3]:80", []string{"198.51.100.1"}, "198.51.100.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &App{TrustedProxies: tt.trusted}
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := a.clientIP(r).String(); got != tt.want {
				t.Errorf("clientIP = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.0/8,nope"} {
		if _, err := ParseTrustedProxies(bad); err == nil {
			t.Errorf("ParseTrustedProxies(%q) accepted it", bad)
		}
	}
	ps, err := ParseTrustedProxies(" ")
	if err != nil || len(ps) != 0 {
		t.Errorf("empty list: %v, %v", ps, err)
	}
}
