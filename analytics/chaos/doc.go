// Package chaos is Sluice's chaos suite, a tool and no part of the product:
// it builds the sluice-gateway, sluice-syncer and sluice-analytics binaries,
// runs them on 127.0.0.1 against a three-node NATS cluster and a Redis
// Cluster with replicas, injects one fault at a time while a bounded load
// generator keeps traffic flowing over every gateway, and prints a table of
// what the clients saw. Its tests carry the build tag chaos; run them with
// `make chaos` (SHORT=1 for the short version CI runs). docs/reliability.md
// explains each fault and the figures.
package chaos
