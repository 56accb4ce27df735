package dao

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is matched (with errors.Is) by every error that Validate methods return.
var ErrInvalid = errors.New("dao: invalid")

// FieldError is one reason a value is invalid: the path of the field, in the JSON names of
// the fields ("container.resources.memory", "container.env[2]"), and why.
type FieldError struct {
	Field  string
	Reason string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Reason }

// ValidationError lists every problem Validate found in one value, in field order.
// errors.Is(err, ErrInvalid) is true for it.
type ValidationError struct {
	// What names the kind of value, such as "service spec".
	What   string
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid ")
	b.WriteString(e.What)
	b.WriteString(": ")
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Has reports whether the error names field (exactly).
func (e *ValidationError) Has(field string) bool {
	for _, fe := range e.Errors {
		if fe.Field == field {
			return true
		}
	}
	return false
}

// problems collects field errors while a value is validated.
type problems struct {
	list []FieldError
}

func (p *problems) add(field, format string, args ...any) {
	p.list = append(p.list, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// err returns nil when nothing was added, or a *ValidationError.
func (p *problems) err(what string) error {
	if len(p.list) == 0 {
		return nil
	}
	return &ValidationError{What: what, Errors: p.list}
}

// join builds a field path: join("container", "env[1]") is "container.env[1]".
func join(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}
