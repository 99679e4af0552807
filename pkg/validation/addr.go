package validation

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Network addresses in service configuration. Each checker returns nil or
// one error whose message names every problem with the value; callers add
// it under the field path (errs.Add("listen", "%v", err)).
//
// A host is an IP address (IPv6 in brackets inside host:port, a zone such
// as %eth0 allowed) or a host name: dot-separated labels of 1-63 letters,
// digits, '-' and '_' (underscores appear in container and service names),
// a label neither starting nor ending with '-', at most 253 characters, an
// optional final dot, and a last label that is not all digits (so 300.1.1.1
// is refused instead of being looked up as a name).

// ListenAddr checks an address a server listens on: [host]:port with an
// optional host (":8080" listens on every interface) and a numeric port
// 0-65535 (0 picks a free port).
func ListenAddr(addr string) error {
	host, port, err := splitAddr(addr, ":8080")
	if err != nil {
		return err
	}
	var errs []string
	if host != "" {
		if err := Host(host); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if err := checkPort(port, 0); err != nil {
		errs = append(errs, err.Error())
	}
	return joined(errs)
}

// HostPort checks an address a client dials, such as a Redis address:
// host:port with a host and a numeric port 1-65535.
func HostPort(addr string) error {
	host, port, err := splitAddr(addr, "127.0.0.1:6379")
	if err != nil {
		return err
	}
	var errs []string
	if host == "" {
		errs = append(errs, fmt.Sprintf("%q has no host: want host:port, like 127.0.0.1:6379", addr))
	} else if err := Host(host); err != nil {
		errs = append(errs, err.Error())
	}
	if err := checkPort(port, 1); err != nil {
		errs = append(errs, err.Error())
	}
	return joined(errs)
}

// Host checks a host: an IP address or a host name (see the rules above).
// IPv6 addresses come without brackets.
func Host(h string) error {
	if h == "" {
		return errors.New("host is empty")
	}
	if strings.ContainsAny(h, ":%") {
		if _, err := netip.ParseAddr(h); err != nil {
			return fmt.Errorf("host %q is not a valid IP address", h)
		}
		return nil
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	name := strings.TrimSuffix(h, ".")
	if name == "" || len(name) > 253 {
		return fmt.Errorf("host %q is not a valid host name (1-253 characters)", h)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if err := checkLabel(l); err != nil {
			return fmt.Errorf("host %q is not a valid host name: %v", h, err)
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return fmt.Errorf("host %q is neither a valid IP address nor a host name (its last label is a number)", h)
	}
	return nil
}

func checkLabel(l string) error {
	if l == "" || len(l) > 63 {
		return fmt.Errorf("label %q must have 1-63 characters", l)
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("label %q must not start or end with '-'", l)
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("character %q is not allowed (letters, digits, '-' and '_')", l[i:i+1])
		}
	}
	return nil
}

// NATSURLs checks a NATS server list as nats.Connect takes it: URLs
// separated by commas (spaces around them ignored), each with scheme nats,
// tls, ws or wss, a host, an optional port 1-65535 (the client's default
// otherwise), optional credentials (user:password@ or token@), no query or
// fragment, and a path only for ws and wss.
func NATSURLs(list string) error {
	if strings.TrimSpace(list) == "" {
		return errors.New("no server URL: want one like nats://127.0.0.1:4222")
	}
	var errs []string
	for i, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if err := natsURL(item); err != nil {
			errs = append(errs, fmt.Sprintf("server %d: %v", i+1, err))
		}
	}
	return joined(errs)
}

func natsURL(raw string) error {
	if raw == "" {
		return errors.New("empty URL (two commas in a row?)")
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] < 0x21 || raw[i] == 0x7f {
			return fmt.Errorf("%q contains a space or control character", raw)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL like nats://127.0.0.1:4222", raw)
	}
	var errs []string
	switch strings.ToLower(u.Scheme) {
	case "nats", "tls":
		if u.Path != "" && u.Path != "/" {
			errs = append(errs, fmt.Sprintf("%q: a %s URL has no path", raw, u.Scheme))
		}
	case "ws", "wss":
	default:
		return fmt.Errorf("%q: scheme must be nats, tls, ws or wss, like nats://127.0.0.1:4222", raw)
	}
	if u.Opaque != "" || u.Host == "" {
		return fmt.Errorf("%q has no host: want %s://host:port", raw, u.Scheme)
	}
	if err := Host(u.Hostname()); err != nil {
		errs = append(errs, fmt.Sprintf("%q: %v", raw, err))
	}
	if strings.HasSuffix(u.Host, ":") {
		errs = append(errs, fmt.Sprintf("%q: empty port", raw))
	} else if p := u.Port(); p != "" {
		if err := checkPort(p, 1); err != nil {
			errs = append(errs, fmt.Sprintf("%q: %v", raw, err))
		}
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#") {
		errs = append(errs, fmt.Sprintf("%q must not have a query or fragment", raw))
	}
	return joined(errs)
}

// splitAddr splits host:port, explaining a missing port with example.
func splitAddr(addr, example string) (host, port string, err error) {
	if addr == "" {
		return "", "", fmt.Errorf("empty address: want host:port, like %s", example)
	}
	if !strings.Contains(addr, ":") {
		return "", "", fmt.Errorf("%q has no port: want host:port, like %s", addr, example)
	}
	host, port, err = net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return "", "", fmt.Errorf("%q is not host:port (%s), like %s", addr, ae.Err, example)
		}
		return "", "", fmt.Errorf("%q is not host:port, like %s", addr, example)
	}
	return host, port, nil
}

// checkPort checks a decimal port between lowest and 65535.
func checkPort(p string, lowest int) error {
	if p == "" {
		return errors.New("port is empty")
	}
	if strings.Trim(p, "0123456789") != "" {
		return fmt.Errorf("port %q is not a number", p)
	}
	if n, err := strconv.Atoi(p); err != nil || n < lowest || n > 65535 {
		return fmt.Errorf("port %s out of range %d-65535", p, lowest)
	}
	return nil
}

func joined(errs []string) error {
	if len(errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(errs, "; "))
}
