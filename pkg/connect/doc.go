// Package connect is how every Sluice service reaches Redis and NATS: one
// configuration (the redis: and nats: sections, the same YAML fields and
// SLUICE_* variables in every service), its defaults and validation, and
// the constructors that build the clients from it.
//
// A client fails at start for what no retry will fix — a file that cannot
// be read, a key that does not match its certificate, a password or a
// certificate authority the server refuses — with an error naming the
// field. A server that is merely unreachable is not an error: the clients
// retry in the background, so a service comes up before its dependencies.
package connect
