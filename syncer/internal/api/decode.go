package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	"github.com/sluicegw/sluice/pkg/validation"
)

// decodeStrict decodes a JSON object into dst (a pointer to a struct). Unlike
// json.Decoder, which stops at the first problem, it reports every unknown
// field and every value of the wrong type, each with its field path, so a
// client fixes a document in one round trip. Field names match as
// encoding/json matches them (exact, else case-insensitive).
func decodeStrict(body []byte, dst any) validation.Errors {
	var errs validation.Errors
	if len(bytes.TrimSpace(body)) == 0 {
		errs.Add("", "a JSON request body is required")
		return errs
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		errs.Add("", "invalid JSON: %s", jsonErrText(err, dec.InputOffset()))
		return errs
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		errs.Add("", "invalid JSON: unexpected data after the object")
		return errs
	}
	checkValue(&errs, raw, reflect.TypeOf(dst).Elem(), "")
	if len(errs) > 0 {
		return errs
	}
	strict := json.NewDecoder(bytes.NewReader(body))
	strict.DisallowUnknownFields()
	if err := strict.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			errs.Add(te.Field, "must be %s", describe(te.Type))
		} else {
			errs.Add("", "%s", jsonErrText(err, strict.InputOffset()))
		}
	}
	return errs
}

func jsonErrText(err error, off int64) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at offset %d", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Sprintf("unexpected end of input at offset %d", off)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// checkValue checks the generic JSON value v against type t at path.
func checkValue(errs *validation.Errors, v any, t reflect.Type, path string) {
	if v == nil { // null leaves the field at its zero value, as encoding/json does
		return
	}
	pt := reflect.PointerTo(t)
	if t.Kind() != reflect.Pointer && (pt.Implements(jsonUnmarshaler) || pt.Implements(textUnmarshaler)) {
		b, _ := json.Marshal(v)
		if err := json.Unmarshal(b, reflect.New(t).Interface()); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				errs.Add(path, "must be %s", describe(t))
			} else {
				errs.Add(path, "%s", strings.TrimPrefix(err.Error(), "json: "))
			}
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		checkValue(errs, v, t.Elem(), path)
	case reflect.Struct:
		checkObject(errs, v, t, path)
	case reflect.Slice, reflect.Array:
		list, ok := v.([]any)
		if !ok {
			errs.Add(path, "must be a list")
			return
		}
		for i, e := range list {
			checkValue(errs, e, t.Elem(), validation.Index(path, i))
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			errs.Add(path, "must be an object")
			return
		}
		for _, k := range sortedKeys(obj) {
			checkValue(errs, obj[k], t.Elem(), validation.Join(path, k))
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			errs.Add(path, "must be a string")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			errs.Add(path, "must be true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		checkNumber(errs, v, t, path)
	case reflect.Interface:
	default:
		errs.Add(path, "cannot be set")
	}
}

func checkObject(errs *validation.Errors, v any, t reflect.Type, path string) {
	obj, ok := v.(map[string]any)
	if !ok {
		errs.Add(path, "must be an object")
		return
	}
	fields := jsonFields(t)
	for _, k := range sortedKeys(obj) {
		f, ok := fields[k]
		if !ok {
			for name, ff := range fields {
				if strings.EqualFold(name, k) {
					f, ok = ff, true
					break
				}
			}
		}
		if !ok {
			errs.Add(validation.Join(path, k), "unknown field")
			continue
		}
		checkValue(errs, obj[k], f.Type, validation.Join(path, k))
	}
}

func checkNumber(errs *validation.Errors, v any, t reflect.Type, path string) {
	n, ok := v.(json.Number)
	if !ok {
		errs.Add(path, "must be %s", describe(t))
		return
	}
	z := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		if f, err := n.Float64(); err != nil || z.OverflowFloat(f) {
			errs.Add(path, "must be %s", describe(t))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, err := n.Int64()
		if err != nil || i < 0 || z.OverflowUint(uint64(i)) {
			errs.Add(path, "must be %s", describe(t))
		}
	default:
		i, err := n.Int64()
		if err != nil || z.OverflowInt(i) {
			errs.Add(path, "must be %s", describe(t))
		}
	}
}

// jsonFields maps the JSON names of t's fields (embedded structs flattened)
// to their struct fields.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				for k, v := range jsonFields(et) {
					if _, dup := out[k]; !dup {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

func describe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.String() {
	case "model.Duration":
		return `a duration like "30s" or "1m"`
	case "time.Time":
		return `an RFC 3339 time like "2030-01-02T15:04:05Z"`
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a " + t.String()
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
