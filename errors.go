package dao

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao/internal/errclass"
)

// ErrInvalid is matched (with errors.Is) by every error that Validate methods return, and
// by every error of an option given a value it does not accept, in every Dao package. It is
// of containerd's class errdefs.ErrInvalidArgument: errdefs.IsInvalidArgument(err) is true
// for all of them.
var ErrInvalid = errclass.New(errdefs.ErrInvalidArgument, "dao: invalid")

// FieldError is one reason a value is invalid: the path of the field, in the JSON names of
// the fields ("container.resources.memory", "container.env[2]"), and why.
type FieldError struct {
	Field  string
	Reason string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Reason }

// Is reports whether target is ErrInvalid or its class, errdefs.ErrInvalidArgument: each
// problem is an invalid value, as the ValidationError that lists it.
func (e FieldError) Is(target error) bool { return errors.Is(ErrInvalid, target) }

// ValidationError lists every problem Validate found in one value, in field order, up to
// MaxProblems of them. errors.Is(err, ErrInvalid) is true for it, and errors.Is and
// errors.As see each of its FieldErrors (Unwrap): errors.As(err, &fe) with a FieldError fe
// gives the first, and errors.Is(err, dao.FieldError{Field: f, Reason: r}) finds any.
type ValidationError struct {
	// What names the kind of value, such as "service spec".
	What   string
	Errors []FieldError
	// More counts the problems found past the first MaxProblems, which Errors does not list.
	More int
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
	if e.More > 0 {
		fmt.Fprintf(&b, "; and %d more", e.More)
	}
	return b.String()
}

// Is reports whether target is ErrInvalid or its class, errdefs.ErrInvalidArgument.
func (e *ValidationError) Is(target error) bool { return errors.Is(ErrInvalid, target) }

// Unwrap returns the FieldErrors, in order, for errors.Is and errors.As.
func (e *ValidationError) Unwrap() []error {
	errs := make([]error, len(e.Errors))
	for i, fe := range e.Errors {
		errs[i] = fe
	}
	return errs
}

// Has reports whether the error names field (exactly) among the problems it lists.
func (e *ValidationError) Has(field string) bool {
	for _, fe := range e.Errors {
		if fe.Field == field {
			return true
		}
	}
	return false
}

// MaxProblems is the most problems a ValidationError lists; it counts the others in More,
// so that a value with a million bad entries makes an error of a readable size.
const MaxProblems = 100

// MaxQuoted is the most runes of a user's input that an error message quotes (see Quote).
const MaxQuoted = 64

// Quote returns s as a double-quoted Go string literal for an error message. An s longer
// than MaxQuoted runes is cut to its first MaxQuoted, followed by "..." and its whole
// length in bytes: a 100 KB name makes `"aaaa...aaaa"... (102400 bytes)`, not a 100 KB
// error. Every error of Dao's validation and admission that quotes a spec quotes it so.
func Quote(s string) string {
	if len(s) <= MaxQuoted {
		return strconv.Quote(s)
	}
	cut, n := 0, 0
	for cut < len(s) && n < MaxQuoted {
		_, size := utf8.DecodeRuneInString(s[cut:])
		cut += size
		n++
	}
	if cut == len(s) {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:cut]) + "... (" + strconv.Itoa(len(s)) + " bytes)"
}

// problems collects field errors while a value is validated.
type problems struct {
	list []FieldError
	more int
}

func (p *problems) add(field, format string, args ...any) {
	if len(p.list) >= MaxProblems {
		p.more++
		return
	}
	p.list = append(p.list, FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// err returns nil when nothing was added, or a *ValidationError.
func (p *problems) err(what string) error {
	if len(p.list) == 0 {
		return nil
	}
	return &ValidationError{What: what, Errors: p.list, More: p.more}
}

// join builds a field path: join("container", "env[1]") is "container.env[1]".
func join(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}
