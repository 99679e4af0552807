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

// AppendHashKey appends the hex SHA-256 of key to dst without allocating
// when dst has room for 64 bytes.
func AppendHashKey(dst, key []byte) []byte {
	sum := sha256.Sum256(key)
	return hex.AppendEncode(dst, sum[:])
}
