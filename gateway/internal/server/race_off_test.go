//go:build !race

package server

// raceEnabled: the race detector is on; it allocates on its own account.
const raceEnabled = false
