package aggregates

import (
	"errors"
	"strconv"

	"github.com/sluicegw/sluice/analytics/internal/rollup"
)

// The key log of an open minute, T+"mk:<minute>", is a STRING to which
// each applied batch appends its pre-summed counters of every key, one
// record per key:
//
//	<len(hash)>:<hash>[ <code>=<value>]...\n
//
// with the non-zero counters by field code (rollup.Codes). A batch costs
// Redis one APPEND per minute however many keys it holds, where a hash of
// per-key fields cost an HINCRBY per key and code; the close script sums
// the records of each key once, when the minute closes. The length prefix
// lets a hash hold any byte.

// keyLog encodes the counters of keys as key log records.
func keyLog(keys map[string]*rollup.Counters) string {
	n := 0
	for k := range keys {
		n += len(k) + 8 + 12*8
	}
	buf := make([]byte, 0, n)
	for k, c := range keys {
		buf = appendKeyRecord(buf, k, c)
	}
	return string(buf)
}

func appendKeyRecord(buf []byte, key string, c *rollup.Counters) []byte {
	buf = strconv.AppendInt(buf, int64(len(key)), 10)
	buf = append(buf, ':')
	buf = append(buf, key...)
	for i, v := range c {
		if v != 0 {
			buf = append(buf, ' ')
			buf = append(buf, rollup.Codes[i]...)
			buf = append(buf, '=')
			buf = strconv.AppendInt(buf, v, 10)
		}
	}
	return append(buf, '\n')
}

var errKeyLog = errors.New("malformed key log record")

// addKeyLog adds the records of a key log to sums, by key hash.
func addKeyLog(log string, sums func(key string) *rollup.Counters) error {
	for len(log) > 0 {
		colon := 0
		for colon < len(log) && log[colon] != ':' {
			colon++
		}
		n, err := strconv.Atoi(log[:min(colon, len(log))])
		if err != nil || n < 0 || colon+1+n > len(log) {
			return errKeyLog
		}
		key := log[colon+1 : colon+1+n]
		rest := log[colon+1+n:]
		end := 0
		for end < len(rest) && rest[end] != '\n' {
			end++
		}
		if end == len(rest) {
			return errKeyLog
		}
		c := sums(key)
		fields := rest[:end]
		for len(fields) > 0 {
			if fields[0] != ' ' {
				return errKeyLog
			}
			fields = fields[1:]
			j := 0
			for j < len(fields) && fields[j] != ' ' {
				j++
			}
			code, val, ok := cutByte(fields[:j], '=')
			if !ok {
				return errKeyLog
			}
			setField(c, code, val)
			fields = fields[j:]
		}
		log = rest[end+1:]
	}
	return nil
}

func cutByte(s string, b byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
