package jwtauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// refCheckJSONObject is checkJSONObject written plainly on
// encoding/json's token stream: slower, and the reference the scanner is
// compared with.
func refCheckJSONObject(data []byte) error {
	if !utf8.Valid(data) {
		return errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("not a JSON object")
	}
	if err := refMembers(dec, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

func refMembers(dec *json.Decoder, depth int) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		if seen[name] {
			return fmt.Errorf("member %q appears twice", name)
		}
		seen[name] = true
		if err := refValue(dec, depth); err != nil {
			return err
		}
	}
	_, err := dec.Token()
	return err
}

func refValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth >= maxJSONDepth {
		return errors.New("too deep")
	}
	if d == '{' {
		return refMembers(dec, depth+1)
	}
	for dec.More() {
		if err := refValue(dec, depth+1); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}

var jsonShapes = []struct {
	json string
	ok   bool
}{
	{`{}`, true},
	{` {"a":1} `, true},
	{`{"a":{"a":{"a":[{"a":1},{"a":2}]}}}`, true},
	{`{"a":"b","b":"a","c":["a","a"]}`, true},
	{`{"a\"b":1,"a\\b":2,"a":"\"a\":1"}`, true},
	{`{"x":"}","y":"{\"x\":1,\"x\":2}"}`, true},
	{`{"a":1,"a":2}`, false},
	{`{"a":1,"\u0061":2}`, false},
	{`{"\ud800":1,"\udfff":2}`, false}, // both decode to U+FFFD
	{`{"é":1,"\u00e9":2}`, false},
	{`{"a":[1,{"b":1,"b":1}]}`, false},
	{`{"x":1}{"y":1}`, false},
	{`{"x":1} x`, false},
	{`[{"a":1}]`, false},
	{`"{}"`, false},
	{`{"a":1,}`, false},
	{"{\"a\":\"\xff\"}", false},
	{`{"a":` + strings.Repeat("[", maxJSONDepth-1) + strings.Repeat("]", maxJSONDepth-1) + `}`, true},
	{`{"a":` + strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth) + `}`, false},
	{`{` + manyMembers(40, "") + `}`, true},
	{`{` + manyMembers(40, "m7") + `}`, false},
	{`{` + manyMembers(40, "m39") + `}`, false},
}

// manyMembers writes n members m0..m(n-1), then dup again if not "".
func manyMembers(n int, dup string) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"m%d":%d`, i, i)
	}
	if dup != "" {
		fmt.Fprintf(&b, `,"%s":0`, dup)
	}
	return b.String()
}

func TestCheckJSONObject(t *testing.T) {
	t.Parallel()
	for _, tc := range jsonShapes {
		t.Run(tc.json[:min(len(tc.json), 40)], func(t *testing.T) {
			err := checkJSONObject([]byte(tc.json))
			if (err == nil) != tc.ok {
				t.Fatalf("checkJSONObject = %v, want ok %v", err, tc.ok)
			}
			if ref := refCheckJSONObject([]byte(tc.json)); (ref == nil) != tc.ok {
				t.Fatalf("reference = %v, want ok %v", ref, tc.ok)
			}
		})
	}
}

// FuzzCheckJSONObject: the scanner and the reference agree on every input,
// and neither panics.
func FuzzCheckJSONObject(f *testing.F) {
	for _, tc := range jsonShapes {
		f.Add([]byte(tc.json))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, want := checkJSONObject(data), refCheckJSONObject(data)
		if (got == nil) != (want == nil) {
			t.Fatalf("%q: scanner %v, reference %v", data, got, want)
		}
	})
}
