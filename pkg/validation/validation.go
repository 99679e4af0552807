// Package validation collects every problem found in a document, each with
// the path of the field it concerns, so callers can report them all at once.
package validation

import (
	"fmt"
	"strings"
)

// Problem is one invalid field.
type Problem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// Errors is a list of problems; it is an error when non-empty.
type Errors []Problem

// Add records a problem at field with a formatted message.
func (e *Errors) Add(field, format string, args ...any) {
	*e = append(*e, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Merge appends the problems of other, each prefixed with prefix.
func (e *Errors) Merge(prefix string, other Errors) {
	for _, p := range other {
		*e = append(*e, Problem{Field: Join(prefix, p.Field), Message: p.Message})
	}
}

// Err returns e as an error, or nil when there are no problems.
func (e Errors) Err() error {
	if len(e) == 0 {
		return nil
	}
	return e
}

func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, p := range e {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

// Join builds a field path: Join("a", "b") is "a.b"; an index is written
// with Index.
func Join(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	case field[0] == '[':
		return prefix + field
	}
	return prefix + "." + field
}

// Index builds the path of the i-th element of the list at prefix.
func Index(prefix string, i int) string {
	return fmt.Sprintf("%s[%d]", prefix, i)
}
