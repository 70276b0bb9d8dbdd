package http

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// peerAddr is the address of r's connection, the zero Addr if it has none
// (a handler called without a listener).
func peerAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(r.RemoteAddr)
	return a.Unmap()
}

// trusted reports whether a is one of Config.TrustedProxies.
func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if a.IsValid() && p.Contains(a) {
			return true
		}
	}
	return false
}

// proxied reports whether r came through a trusted proxy, whose
// X-Forwarded-* headers are then believed.
func (s *Server) proxied(r *http.Request) bool { return s.trusted(peerAddr(r)) }

// clientAddr is the address r is counted against: the connection's peer
// or, when the peer is a trusted proxy, the nearest address in
// X-Forwarded-For that is not one (the hops a client writes itself lie to
// the left of those its proxies append, so the list is read from the
// right). A malformed entry stops the walk at the last address proxies
// vouched for.
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	addr := peerAddr(r)
	if !s.trusted(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr
		}
		addr = hop.Unmap()
		if !s.trusted(addr) {
			return addr
		}
	}
	return addr
}

// baseURL is Config.BaseURL, or the URL the request came in on: its scheme
// (https on TLS) and Host, which AuthZEN requires (the PDP identifier of
// the metadata is the one the client used) and which caches key on; a
// request without a usable Host gets the listener's own address. Behind a
// trusted proxy (Config.TrustedProxies) the proxy's X-Forwarded-Proto,
// X-Forwarded-Host and X-Forwarded-Prefix say it instead; from anyone else
// those headers are ignored.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.BaseURL != "" {
		return s.cfg.BaseURL
	}
	scheme, host, prefix := "http", r.Host, ""
	if r.TLS != nil {
		scheme = "https"
	}
	if s.proxied(r) {
		proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
		if p := strings.ToLower(strings.TrimSpace(proto)); p == "https" || p == "http" {
			scheme = p
		}
		if h, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Host"), ","); validHost(strings.TrimSpace(h)) {
			host = strings.TrimSpace(h)
		}
		prefix = forwardedPrefix(r)
	}
	if !validHost(host) {
		host = ""
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			host = a.String()
		}
	}
	return scheme + "://" + host + prefix
}

// validHost reports whether h is a bare host[:port]: no user, path, query
// or anything a URL would read as more than a host.
func validHost(h string) bool {
	if h == "" || strings.ContainsAny(h, "/\\@?# \t") {
		return false
	}
	u, err := url.Parse("http://" + h)
	return err == nil && u.Host == h && u.User == nil && u.Path == "" && u.Hostname() != ""
}

// forwardedPrefix is X-Forwarded-Prefix as a clean path without a trailing
// slash, "" when absent or not a plain absolute path.
func forwardedPrefix(r *http.Request) string {
	prefix, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Prefix"), ",")
	prefix = strings.TrimRight(strings.TrimSpace(prefix), "/")
	if prefix == "" || prefix[0] != '/' || strings.ContainsAny(prefix, "?#\\ ") || strings.Contains(prefix, "..") {
		return ""
	}
	return prefix
}
