package store

// Slot returns the Redis Cluster hash slot of key, as CLUSTER KEYSLOT
// computes it: the CRC16 (XMODEM) of its hash tag, the part between the
// first '{' and the first '}' after it when that part is not empty, or of
// the whole key otherwise, modulo 16384. Keys of one slot may go in one
// script call.
func Slot[K string | []byte](key K) int {
	for i := 0; i < len(key); i++ {
		if key[i] != '{' {
			continue
		}
		for j := i + 1; j < len(key); j++ {
			if key[j] == '}' {
				if j > i+1 {
					key = key[i+1 : j]
				}
				return int(crc16(key) & (Slots - 1))
			}
		}
		break
	}
	return int(crc16(key) & (Slots - 1))
}

// Slots is the number of hash slots of a Redis Cluster.
const Slots = 16384

func crc16[K string | []byte](b K) uint16 {
	var c uint16
	for i := 0; i < len(b); i++ {
		c = c<<8 ^ crcTable[byte(c>>8)^b[i]]
	}
	return c
}

// crcTable is CRC16-CCITT (XMODEM, polynomial 0x1021) by byte.
var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()
