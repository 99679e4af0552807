// Package conformance holds the gateway's HTTP/1.1 parsing and framing
// conformance suite: a sluice-gateway binary built from this tree, started
// as a process with its own redis-server and NATS, a recording upstream
// that keeps the exact bytes of every request it receives, and raw TCP
// clients sending the cases of RFC 9110/9112 and of published request
// smuggling research. See conformance_test.go for the table and
// docs/edge.md ("Framing and parsing") for the contract it proves.
package conformance
