package model

import (
	"crypto/sha256"
	"encoding/hex"
)

// HashKey returns the lowercase hex SHA-256 of an API key, the only form in
// which keys are stored or looked up.
func HashKey(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:])
}
