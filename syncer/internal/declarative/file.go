// Package declarative reads, validates and writes Sluice's declarative
// configuration file, and plans the writes that make the stored APIs and
// policies match it.
//
// The file is YAML (JSON is accepted too):
//
//	apis:
//	  - id: orders
//	    listen_path: /orders/
//	    upstream: {targets: ["http://10.0.0.5:8000"]}
//	    auth: {mode: api_key}
//	policies:
//	  - id: gold
//	    access: [{api: orders}]
//	    rate_limit: {rate: 100, per: 1s}
//	keys:
//	  - id: ci-bot
//	    policies: [gold]
//	    key: ${env:CI_BOT_KEY}
//
// Keys carry their value only as a ${env:NAME} reference (hashed when the
// file is read) or as its SHA-256 (see Key).
package declarative

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/validation"
)

// File is the declarative configuration: the APIs, policies and keys that
// should be stored.
type File struct {
	APIs     []model.API    `json:"apis" yaml:"apis"`
	Policies []model.Policy `json:"policies" yaml:"policies"`
	// Orgs are the tenants keys may name (orgs.go).
	Orgs []model.Org `json:"orgs,omitempty" yaml:"orgs,omitempty"`
	// Keys are managed only when KeysSet: a file without a keys section
	// leaves stored keys alone, even when pruning.
	Keys    []Key `json:"keys,omitempty" yaml:"keys,omitempty"`
	KeysSet bool  `json:"-" yaml:"-"`
}

// MaxFileBytes bounds the size of a file Parse accepts.
const MaxFileBytes = 16 << 20

// Parse reads a declarative file. Every problem the decoder can see (syntax
// aside, which stops it) is returned as validation.Errors with the path of
// the field, e.g. "apis[2].upstream.targts: unknown field".
func Parse(data []byte) (*File, error) {
	return ParseWith(data, nil)
}

// envRef is a reference to an environment variable: the whole value
// ${env:NAME}.
var envRef = regexp.MustCompile(`^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$`)

// EnvRef returns the reference to the environment variable name.
func EnvRef(name string) string { return "${env:" + name + "}" }

// ParseWith is Parse resolving every value of the form ${env:NAME} with
// getenv (nil: references are refused). A variable that is not set is a
// problem at the line of the value.
func ParseWith(data []byte, getenv func(string) (string, bool)) (*File, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("file is %d bytes, more than the %d allowed", len(data), MaxFileBytes)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	f := &File{}
	if root.Kind == 0 { // empty document
		return f, nil
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" {
		return f, nil
	}
	var errs validation.Errors
	checkKeyValues(&errs, doc)
	resolveEnv(&errs, doc, "", getenv)
	if doc.Kind != yaml.MappingNode {
		errs.Add("", "line %d: the file must be a mapping with apis and policies", doc.Line)
		return nil, errs
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		switch k.Value {
		case "apis":
			f.APIs = decodeList[model.API](&errs, "apis", v)
		case "policies":
			f.Policies = decodeList[model.Policy](&errs, "policies", v)
		case "orgs":
			f.Orgs = decodeList[model.Org](&errs, "orgs", v)
		case "keys":
			f.Keys, f.KeysSet = decodeKeys(&errs, v), true
		default:
			errs.Add(k.Value, "line %d: unknown field (the file holds apis, policies, orgs and keys)", k.Line)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return f, nil
}

// decodeList decodes each element of a sequence on its own, strictly, so a
// problem in one element does not hide the problems of the next.
func decodeList[T any](errs *validation.Errors, field string, n *yaml.Node) []T {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		errs.Add(field, "line %d: must be a list", n.Line)
		return nil
	}
	out := make([]T, len(n.Content))
	for i, item := range n.Content {
		decodeStrict(errs, validation.Index(field, i), item, &out[i])
	}
	return out
}

var lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// decodeStrict decodes one node into dst refusing unknown fields, and
// records every problem under prefix with the path of the field it names.
func decodeStrict(errs *validation.Errors, prefix string, n *yaml.Node, dst any) {
	// yaml.Node.Decode cannot refuse unknown fields: re-encode the node and
	// decode it with a strict decoder, mapping its lines back to paths.
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{n}}
	data, err := yaml.Marshal(doc)
	if err != nil {
		errs.Add(prefix, "line %d: %v", n.Line, err)
		return
	}
	var copyRoot yaml.Node
	if err := yaml.Unmarshal(data, &copyRoot); err != nil {
		errs.Add(prefix, "line %d: %v", n.Line, err)
		return
	}
	// The path of a line is its deepest key, else its deepest list element.
	keys, elems := map[int]string{}, map[int]string{}
	walk(&copyRoot, "", func(path string, line int) {
		m := keys
		if strings.HasSuffix(path, "]") {
			m = elems
		}
		if len(path) > len(m[line]) {
			m[line] = path
		}
	})
	origLines := map[string]int{}
	walk(n, "", func(path string, line int) {
		if _, ok := origLines[path]; !ok {
			origLines[path] = line
		}
	})
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err = dec.Decode(dst)
	if err == nil {
		return
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		errs.Add(prefix, "line %d: %v", n.Line, err)
		return
	}
	for _, msg := range te.Errors {
		path, line, text := "", n.Line, msg
		if m := lineRE.FindStringSubmatch(msg); m != nil {
			l, _ := strconv.Atoi(m[1])
			path, text = keys[l], m[2]
			if path == "" {
				path = elems[l]
			}
			if ol, ok := origLines[path]; ok {
				line = ol
			}
		}
		errs.Add(validation.Join(prefix, path), "line %d: %s", line, friendly(text))
	}
}

// friendly rewrites the decoder's wording in the terms of the file.
func friendly(msg string) string {
	if strings.HasPrefix(msg, "field ") && strings.Contains(msg, " not found in type ") {
		return "unknown field"
	}
	if strings.HasPrefix(msg, "cannot unmarshal ") {
		return strings.Replace(msg, "cannot unmarshal", "cannot read", 1)
	}
	return msg
}

// walk calls fn with the path and line of every key and list element
// below n.
func walk(n *yaml.Node, path string, fn func(path string, line int)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walk(c, path, fn)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := validation.Join(path, n.Content[i].Value)
			fn(p, n.Content[i].Line)
			walk(n.Content[i+1], p, fn)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := validation.Index(path, i)
			fn(p, c.Line)
			walk(c, p, fn)
		}
	}
}

// Normalize sorts APIs and policies by id, so equal configurations are
// written identically.
func (f *File) Normalize() {
	sort.SliceStable(f.APIs, func(i, j int) bool { return f.APIs[i].ID < f.APIs[j].ID })
	sort.SliceStable(f.Policies, func(i, j int) bool { return f.Policies[i].ID < f.Policies[j].ID })
	f.normalizeOrgs()
	sort.SliceStable(f.Keys, func(i, j int) bool { return f.Keys[i].ID < f.Keys[j].ID })
}

// document is the encoded form of f: sorted by id, empty lists written
// as [], and keys written when f manages them.
func document(f *File) any {
	out := *f
	out.APIs = append([]model.API(nil), f.APIs...)
	out.Policies = append([]model.Policy(nil), f.Policies...)
	out.Orgs = append([]model.Org(nil), f.Orgs...)
	out.Keys = append([]Key(nil), f.Keys...)
	out.Normalize()
	if out.APIs == nil {
		out.APIs = []model.API{}
	}
	if out.Policies == nil {
		out.Policies = []model.Policy{}
	}
	doc := struct {
		APIs     []model.API    `json:"apis" yaml:"apis"`
		Policies []model.Policy `json:"policies" yaml:"policies"`
		Orgs     []model.Org    `json:"orgs,omitempty" yaml:"orgs,omitempty"`
		Keys     *[]Key         `json:"keys,omitempty" yaml:"keys,omitempty"`
	}{APIs: out.APIs, Policies: out.Policies, Orgs: out.Orgs}
	if f.KeysSet || len(f.Keys) > 0 {
		if out.Keys == nil {
			out.Keys = []Key{}
		}
		doc.Keys = &out.Keys
	}
	return &doc
}

// MarshalJSON writes f as indented JSON in the stable form of Marshal.
func MarshalJSON(f *File) ([]byte, error) {
	b, err := json.MarshalIndent(document(f), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return append(b, '\n'), nil
}

// Marshal writes f as YAML in a stable form: sorted by id, two-space
// indentation. Parse(Marshal(f)) equals f.
func Marshal(f *File) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(document(f)); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return buf.Bytes(), nil
}

// resolveEnv replaces the ${env:NAME} scalars below n with the variables'
// values, recording a problem for each one not set.
func resolveEnv(errs *validation.Errors, n *yaml.Node, path string, getenv func(string) (string, bool)) {
	switch n.Kind {
	case yaml.ScalarNode:
		m := envRef.FindStringSubmatch(n.Value)
		if m == nil {
			return
		}
		if getenv == nil {
			errs.Add(path, "line %d: ${env:%s}: environment references are not resolved here", n.Line, m[1])
			return
		}
		v, ok := getenv(m[1])
		if !ok {
			errs.Add(path, "line %d: environment variable %s is not set", n.Line, m[1])
			return
		}
		n.Value, n.Tag, n.Style = v, "!!str", yaml.DoubleQuotedStyle
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			resolveEnv(errs, n.Content[i+1], validation.Join(path, n.Content[i].Value), getenv)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			resolveEnv(errs, c, validation.Index(path, i), getenv)
		}
	}
}

// Lines returns the line of every key and list element of a YAML or JSON
// document by field path (apis[2].listen_path), for pointing at the line
// of a problem the file's own checks could not see.
func Lines(data []byte) map[string]int {
	var root yaml.Node
	out := map[string]int{}
	if yaml.Unmarshal(data, &root) != nil {
		return out
	}
	walk(&root, "", func(path string, line int) {
		if _, ok := out[path]; !ok {
			out[path] = line
		}
	})
	return out
}
