// Package config loads a service's YAML configuration and lets an
// environment variable override every field.
//
// The variable of a field is the prefix followed by its YAML path in upper
// case, joined by "_": with prefix "SLUICE_", redis.addr is SLUICE_REDIS_ADDR.
// Nested structs extend the path (redis.tls.ca_file is
// SLUICE_REDIS_TLS_CA_FILE); an inlined struct (`yaml:",inline"`) adds its
// fields to its parent's. Lists of strings are comma separated. Unknown
// YAML fields are an error.
package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicegw/sluice/pkg/validation"
)

// Prefix is the prefix of every Sluice environment variable.
const Prefix = "SLUICE_"

// Load fills dst (a pointer to a struct holding defaults) from the YAML
// file at path (skipped when path is empty) and then from the environment.
// Its error is a validation.Errors: the file's problems under the field
// "config" (one per YAML error, each naming its line), each variable's
// under the field it sets.
func Load(path string, dst any) error {
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return validation.Errors{{Field: "config", Message: err.Error()}}
		}
		if err := Decode(data, dst); err != nil {
			var errs validation.Errors
			var te *yaml.TypeError
			if errors.As(err, &te) {
				for _, e := range te.Errors {
					errs.Add("config", "%s: %s", path, e)
				}
				return errs
			}
			errs.Add("config", "%s: %v", path, err)
			return errs
		}
	}
	return ApplyEnv(Prefix, os.Environ(), dst)
}

// Decode reads YAML into dst, refusing unknown fields.
func Decode(data []byte, dst any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// Var is one environment variable and the field it sets.
type Var struct {
	Name  string // e.g. SLUICE_REDIS_ADDR
	Field string // e.g. redis.addr
	Type  string
}

// Vars lists the environment variables that can set fields of the struct
// cfg points to, sorted by name. Services print them in --help.
func Vars(prefix string, cfg any) []Var {
	var out []Var
	walk(reflect.ValueOf(cfg).Elem(), "", func(path string, v reflect.Value) {
		out = append(out, Var{Name: envName(prefix, path), Field: path, Type: v.Type().String()})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ApplyEnv sets the fields of *dst named by variables in env ("K=V"). Its
// error is a validation.Errors: one problem per variable that cannot be
// parsed, under the field it sets, naming the variable.
func ApplyEnv(prefix string, env []string, dst any) error {
	vals := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, prefix) {
			vals[k] = v
		}
	}
	var errs validation.Errors
	walk(reflect.ValueOf(dst).Elem(), "", func(path string, v reflect.Value) {
		name := envName(prefix, path)
		s, ok := vals[name]
		if !ok {
			return
		}
		if err := setValue(v, s); err != nil {
			errs.Add(path, "%s: %v", name, err)
		}
	})
	return errs.Err()
}

func envName(prefix, path string) string {
	return prefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(path))
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// walk calls fn for every settable leaf field, with its YAML path.
func walk(v reflect.Value, prefix string, fn func(string, reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		fv := v.Field(i)
		if opts == "inline" && fv.Kind() == reflect.Struct {
			walk(fv, prefix, fn) // its fields are the parent's, as in YAML
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		if fv.Kind() == reflect.Struct && !reflect.PointerTo(fv.Type()).Implements(textUnmarshaler) {
			walk(fv, path, fn)
			continue
		}
		fn(path, fv)
	}
}

func setValue(v reflect.Value, s string) error {
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshaler) {
		return v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
	}
	if v.Type() == reflect.TypeFor[time.Duration]() {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("invalid boolean %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("invalid integer %q", s)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("invalid unsigned integer %q", s)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("invalid number %q", s)
		}
		v.SetFloat(n)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("lists of %s cannot be set from the environment", v.Type().Elem())
		}
		var items []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				items = append(items, p)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("type %s cannot be set from the environment", v.Type())
	}
	return nil
}
