package hooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Resolver looks up the IP addresses of a host name; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Address ranges refused besides those netip.Addr classifies itself.
var (
	sharedSpace = netip.MustParsePrefix("100.64.0.0/10") // carrier-grade NAT, RFC 6598
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")     // RFC 791 "this network"
	reserved4   = netip.MustParsePrefix("240.0.0.0/4")   // reserved, and broadcast
	siteLocal   = netip.MustParsePrefix("fec0::/10")     // deprecated site-local
)

// IPv6 ranges that carry an IPv4 address, besides ::ffff:0:0/96 (which
// netip.Addr.Unmap reads): a packet to one of them reaches, through a
// translator or a relay, the IPv4 address it carries.
var (
	nat64      = netip.MustParsePrefix("64:ff9b::/96") // NAT64, RFC 6052: the last 32 bits
	compatible = netip.MustParsePrefix("::/96")        // IPv4-compatible, RFC 4291 (deprecated): the last 32 bits
	sixToFour  = netip.MustParsePrefix("2002::/16")    // 6to4, RFC 3056: bits 16 to 47
)

// embeddedIPv4 returns the IPv4 address a carries: a itself when it is
// IPv4, the IPv4 address inside an IPv4-mapped, NAT64, IPv4-compatible or
// 6to4 address; ok is false for any other IPv6 address, and for :: and
// ::1, which IPv6 defines as unspecified and loopback.
func embeddedIPv4(a netip.Addr) (v4 netip.Addr, ok bool) {
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return a, true
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:])), true
	case compatible.Contains(a) && !a.IsUnspecified() && !a.IsLoopback():
		return netip.AddrFrom4([4]byte(b[12:])), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return a, false
}

// The addresses "localhost" names.
var (
	loopback4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	loopback6 = netip.IPv6Loopback()
)

// anyPort is the port of a self address given without one: every port.
const anyPort = 0

var defaultPort = map[string]uint16{"http": 80, "https": 443}

// AddressClass names the kind of a non-public address: "loopback address",
// "private address (RFC 1918, RFC 4193)" and so on; "" for an address on
// the public internet. An IPv6 address that carries an IPv4 address
// (::ffff:a.b.c.d, 64:ff9b::a.b.c.d, ::a.b.c.d, 2002:AABB:CCDD::) is the
// class of that IPv4 address: 2002:7f00:1:: is a loopback address.
func AddressClass(a netip.Addr) string {
	if v4, ok := embeddedIPv4(a); ok {
		a = v4
	} else {
		a = a.WithZone("")
	}
	switch {
	case a.IsUnspecified():
		return "unspecified address"
	case a.IsLoopback():
		return "loopback address"
	case a.IsPrivate():
		return "private address (RFC 1918, RFC 4193)"
	case a.IsLinkLocalUnicast():
		return "link-local address (cloud metadata services such as 169.254.169.254 live there)"
	case a.IsMulticast():
		return "multicast address"
	case sharedSpace.Contains(a):
		return "shared address (carrier-grade NAT, RFC 6598)"
	case thisNetwork.Contains(a):
		return `"this network" address (0.0.0.0/8)`
	case reserved4.Contains(a):
		return "reserved or broadcast address (240.0.0.0/4)"
	case siteLocal.Contains(a):
		return "site-local address (fec0::/10)"
	}
	return ""
}

// RefusedError is a target address the Guard refuses.
type RefusedError struct {
	// Host is the host as the URL names it: a name, or the address itself.
	Host string
	Addr netip.Addr
	// Class is AddressClass(Addr), or "pollhook's own listen address".
	Class string
	// Self is true when Addr and the port are pollhook's own listener,
	// which no allow list opens.
	Self bool
}

func (e *RefusedError) Error() string {
	what := e.Addr.String()
	if h, err := netip.ParseAddr(strings.Trim(e.Host, "[]")); e.Host != "" && (err != nil || h != e.Addr) {
		what = fmt.Sprintf("host %s resolves to %s, which", e.Host, e.Addr)
	}
	if e.Self {
		return fmt.Sprintf("%s is pollhook's own listen address: a subscription cannot point at pollhook itself", what)
	}
	example := netip.PrefixFrom(e.Addr.WithZone("").Unmap(), 128)
	if v4, ok := embeddedIPv4(e.Addr); ok {
		example = netip.PrefixFrom(v4, 32)
		if !e.Addr.Unmap().Is4() {
			what = fmt.Sprintf("%s carries the IPv4 address %s, which", what, v4)
		}
	}
	article := "a"
	if e.Class != "" && strings.ContainsRune("aeiou", rune(e.Class[0])) {
		article = "an"
	}
	return fmt.Sprintf("%s is %s %s: pollhook sends to such addresses only when http.allow_targets holds them (for example %q)",
		what, article, e.Class, example.String())
}

// selfAddr is one of pollhook's own listen addresses. An empty host, or
// an unspecified address, listens on every local address; port anyPort
// is any port.
type selfAddr struct {
	host string
	port uint16
}

// Guard keeps requests to subscriber URLs off addresses they must not
// reach (server-side request forgery): loopback, private, link-local,
// multicast, unspecified, shared (CGNAT) and reserved addresses unless an
// allowed prefix holds them, and pollhook's own listen addresses always.
// It checks a URL when a subscription is made (CheckURL) and every address
// again when a connection is dialed (DialContext), so that a name that
// resolves elsewhere later (DNS rebinding) is caught.
//
// A Guard is safe for concurrent use.
type Guard struct {
	allow     []netip.Prefix
	self      []selfAddr
	resolver  Resolver
	dialer    net.Dialer
	transport *http.Transport
}

// NewGuard returns a Guard that allows the addresses in allow although
// they are not public, refuses self (pollhook's listen addresses,
// host:port as configured, such as "127.0.0.1:8080" or ":8080"), and
// resolves names with resolver (nil means net.DefaultResolver).
func NewGuard(allow []netip.Prefix, self []string, resolver Resolver) *Guard {
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	g := &Guard{allow: allow, resolver: resolver}
	for _, s := range self {
		host, port, err := net.SplitHostPort(s)
		p, perr := strconv.ParseUint(port, 10, 16)
		if err != nil || perr != nil {
			host, p = strings.Trim(s, "[]"), uint64(anyPort)
		}
		g.self = append(g.self, selfAddr{host: host, port: uint16(p)})
	}
	g.transport = &http.Transport{
		Proxy:                 nil, // a proxy would dial for us, unchecked
		DialContext:           g.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return g
}

// CheckURL checks a subscriber URL: an http or https URL with a host,
// every address of which the Guard allows. Its errors say what is wrong
// in words a subscriber can act on; a refused address is a *RefusedError.
func (g *Guard) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL
		}
		return fmt.Errorf("parse url: %w", err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return fmt.Errorf("check url: want an http or https URL (got scheme %q)", u.Scheme)
	}
	host := u.Hostname()
	if host == "" {
		return errors.New("check url: no host")
	}
	port := defaultPort[scheme]
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return fmt.Errorf("check url: invalid port %q", p)
		}
		port = uint16(n)
	}
	addrs, err := g.resolve(ctx, host)
	if err != nil {
		return fmt.Errorf("check url: %w", err)
	}
	for _, a := range addrs {
		if err := g.check(ctx, host, a, port); err != nil {
			return fmt.Errorf("check url: %w", err)
		}
	}
	return nil
}

// DialContext dials addr (host:port) as net.Dialer does, after resolving
// the host and checking every address it resolves to: it fails with a
// *RefusedError if any is refused, and otherwise dials the checked
// addresses in turn, never the name.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("dial %s: invalid port %q", addr, p)
	}
	addrs, err := g.resolve(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	for _, a := range addrs {
		if err := g.check(ctx, host, a, uint16(port)); err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
	}
	var first error
	for _, a := range addrs {
		c, err := g.dialer.DialContext(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// Transport returns the Guard's HTTP transport: it dials with DialContext,
// uses no proxy, and is shared by every caller (so connections are
// reused).
func (g *Guard) Transport() *http.Transport { return g.transport }

// Client returns an HTTP client that sends through Transport, gives up
// after timeout (0 for never), and does not follow redirects: a 3xx is
// returned as it is.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport:     g.transport,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// resolve returns the addresses of host: itself when it is an address.
func (g *Guard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return []netip.Addr{a}, nil
	}
	addrs, err := g.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolve host %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve host %s: no addresses", host)
	}
	return addrs, nil
}

// check returns a *RefusedError if a (host's address) and port are
// refused.
func (g *Guard) check(ctx context.Context, host string, a netip.Addr, port uint16) error {
	if g.isSelf(ctx, a, port) {
		return &RefusedError{Host: host, Addr: a, Class: "pollhook's own listen address", Self: true}
	}
	class := AddressClass(a)
	if class == "" {
		return nil
	}
	// An allowed prefix allows the address as written and, for one that
	// carries an IPv4 address, that address.
	plain := a.WithZone("").Unmap()
	v4, carries := embeddedIPv4(a)
	for _, p := range g.allow {
		if p.Contains(plain) || (carries && p.Contains(v4)) {
			return nil
		}
	}
	return &RefusedError{Host: host, Addr: a, Class: class}
}

// isSelf reports whether a:port reaches one of pollhook's own listeners.
func (g *Guard) isSelf(ctx context.Context, a netip.Addr, port uint16) bool {
	a = a.WithZone("").Unmap()
	for _, s := range g.self {
		if s.port != anyPort && s.port != port {
			continue
		}
		if a.IsUnspecified() { // connecting to 0.0.0.0 or :: reaches this host
			return true
		}
		if h, err := netip.ParseAddr(s.host); s.host == "" || (err == nil && h.IsUnspecified()) {
			if a.IsLoopback() || isLocal(a) {
				return true
			}
			continue
		} else if err == nil {
			if h.WithZone("").Unmap() == a {
				return true
			}
			continue
		}
		if strings.EqualFold(s.host, "localhost") {
			if a == loopback4 || a == loopback6 {
				return true
			}
			continue
		}
		addrs, err := g.resolver.LookupNetIP(ctx, "ip", s.host)
		if err != nil {
			continue
		}
		for _, h := range addrs {
			if h.WithZone("").Unmap() == a {
				return true
			}
		}
	}
	return false
}

// isLocal reports whether a is an address of one of this host's network
// interfaces.
func isLocal(a netip.Addr) bool {
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range ifaddrs {
		if n, ok := ia.(*net.IPNet); ok {
			if b, ok := netip.AddrFromSlice(n.IP); ok && b.Unmap() == a {
				return true
			}
		}
	}
	return false
}
