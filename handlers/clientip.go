package handlers

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the networks whose X-Forwarded-For the app believes.
type Proxies []netip.Prefix

// ParseTrustedProxies reads a comma-separated list of CIDRs or single
// addresses (the -trusted-proxies flag).
func ParseTrustedProxies(s string) (Proxies, error) {
	var out Proxies
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is neither a CIDR nor an address", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// clientIP is the peer's address or, behind a trusted proxy, the right-most
// X-Forwarded-For address that is not one (the client may write the rest).
func (a *App) clientIP(r *http.Request) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := peer.Addr().Unmap()
	if !a.trusted(addr) {
		return addr
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		list := strings.Split(hops[i], ",")
		for j := len(list) - 1; j >= 0; j-- {
			hop, ok := parseHop(list[j])
			if !ok {
				// Not an address: the proxy we trust did not write it, so
				// stop at the last hop we can vouch for.
				return addr
			}
			addr = hop
			if !a.trusted(hop) {
				return hop
			}
		}
	}
	return addr
}

// forwardedByStranger: r says a proxy forwarded it, but its peer is not one
// of -trusted-proxies. A tunnel or proxy on this machine that nobody declared
// (ngrok, cloudflared, a local nginx) connects from loopback for every client.
func (a *App) forwardedByStranger(r *http.Request) bool {
	h := r.Header
	if len(h["X-Forwarded-For"]) == 0 && len(h["Forwarded"]) == 0 && len(h["X-Real-Ip"]) == 0 {
		return false
	}
	return !a.fromTrustedProxy(r)
}

func (a *App) trusted(addr netip.Addr) bool {
	return a.TrustedProxies.contain(addr)
}

func (ps Proxies) contain(addr netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// parseHop reads one X-Forwarded-For entry: an address, possibly with a
// port or in brackets.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}
