package policy

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/opendao/dao"
)

// AdmissionMode says what a violated admission rule does.
type AdmissionMode int

// Admission modes. The zero value is Enforce.
const (
	// Enforce refuses a service that violates the rule.
	Enforce AdmissionMode = iota
	// Audit admits the service and reports the violations as warnings, to try a rule on
	// real traffic before enforcing it.
	Audit
)

func (m AdmissionMode) String() string {
	switch m {
	case Enforce:
		return "enforce"
	case Audit:
		return "audit"
	}
	return "AdmissionMode(" + strconv.Itoa(int(m)) + ")"
}

// Violation is one way a service breaks an admission rule.
type Violation struct {
	// Rule names the rule, such as "allowed-registries".
	Rule string
	// Field is the path of the field in the JSON names of dao.ServiceSpec, such as
	// "container.image" or "container.capAdd[1]".
	Field string
	// Reason says what is wrong, such as `registry "docker.io" is not allowed`.
	Reason string
}

func (v Violation) String() string { return v.Rule + ": " + v.Field + ": " + v.Reason }

// AdmissionRule checks a service before the orchestrator accepts it.
type AdmissionRule struct {
	// Name identifies the rule in violations, such as "disallow-privileged".
	Name string
	// Mode is Enforce (the default) or Audit.
	Mode AdmissionMode
	// Check returns every violation of the rule by spec, or none. It must not change
	// spec. Admit fills in the Rule of the violations it returns when it is empty.
	Check func(spec *dao.ServiceSpec) []Violation
}

// WithMode returns r with mode m.
func (r AdmissionRule) WithMode(m AdmissionMode) AdmissionRule {
	r.Mode = m
	return r
}

// AdmissionError lists every violation of enforced rules by one service.
// errors.Is(err, ErrNotAdmitted) holds for it.
type AdmissionError struct {
	// Service is the name of the service.
	Service    string
	Violations []Violation
}

func (e *AdmissionError) Error() string {
	var b strings.Builder
	b.WriteString("policy: service ")
	b.WriteString(dao.Quote(e.Service))
	b.WriteString(" not admitted: ")
	for i, v := range e.Violations {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(v.String())
	}
	return b.String()
}

// Is reports whether target is ErrNotAdmitted or one of its classes.
func (e *AdmissionError) Is(target error) bool { return errors.Is(ErrNotAdmitted, target) }

// Admit runs every rule on spec, in order, and returns all the violations at once: those
// of audit rules as warnings, and those of enforced rules in an *AdmissionError (nil when
// there are none). The service is admitted when err is nil, warnings or not.
//
// A violation is reported once however many rules report it (the same rule, field and
// reason), as when Baseline is combined with one of the rules it holds, such as
// DisallowPrivileged: the first report keeps its place, and a violation that an enforced
// rule reports is not also a warning.
func Admit(spec *dao.ServiceSpec, rules ...AdmissionRule) (warnings []Violation, err error) {
	var refused []Violation
	// seen holds the violations reported so far: true for refused, false for warnings.
	seen := map[Violation]bool{}
	for _, r := range rules {
		if r.Check == nil {
			continue
		}
		enforced := r.Mode != Audit
		for _, v := range r.Check(spec) {
			if v.Rule == "" {
				v.Rule = r.Name
			}
			wasRefused, dup := seen[v]
			if dup && (wasRefused || !enforced) {
				continue
			}
			if dup { // a warning so far, refused after all
				warnings = slices.DeleteFunc(warnings, func(w Violation) bool { return w == v })
			}
			seen[v] = enforced
			if enforced {
				refused = append(refused, v)
			} else {
				warnings = append(warnings, v)
			}
		}
	}
	if len(refused) > 0 {
		return warnings, &AdmissionError{Service: spec.Name, Violations: refused}
	}
	return warnings, nil
}
