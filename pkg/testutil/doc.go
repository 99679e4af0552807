// Package testutil holds the test helpers every module shares. It starts
// real servers on free ports, with functions to stop, restart and pause
// them: redis-server (alone, with TLS or ACLs, as a Redis Cluster, with
// Sentinels), an embedded NATS server and an OIDC provider. Nothing here
// mocks them: tests talk to the real thing. It also makes certificate
// authorities and certificates (NewCA), builds Sluice's binaries from the
// tree and runs them as processes a test can kill, freeze and restart
// (BuildBinaries, StartProc), and reads Prometheus expositions.
//
// It is for tests only: tests and test helpers import it, no binary does.
package testutil
