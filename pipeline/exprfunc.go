package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// scope is what an expression reads when it is evaluated.
type scope interface {
	// stepState returns what a step this one needs, directly or not, gives its
	// expressions; false for another step.
	stepState(step string) (stepState, bool)
	// matrixValues, envValues and secretValues are the matrix, env and secrets contexts.
	matrixValues() map[string]string
	envValues() map[string]string
	secretValues() map[string]string
	// hashFiles is the function of the same name: the SHA-256 of the workspace files that
	// match the patterns, "" when none does.
	hashFiles(patterns []string) (string, error)
	// success, failure and cancelled are the functions of the same names.
	success() bool
	failure() bool
	cancelled() bool
}

// stepState is a step as steps.<step> shows it.
type stepState struct {
	status Status
	// outcome is how the step ended ("success", "failure", "cancelled" or "skipped");
	// conclusion the same once continue_on_error is applied: a failure that may fail is a
	// "success".
	outcome, conclusion string
	outputs             map[string]string
}

func (s stepState) value() value {
	return object(map[string]value{
		"outputs":    strObject(s.outputs),
		"outcome":    str(s.outcome),
		"conclusion": str(s.conclusion),
		"status":     str(string(s.status)),
	})
}

// outcomeOf is GitHub's word for a status: a time-out is a failure.
func outcomeOf(st Status) string {
	switch st {
	case StatusSuccess:
		return "success"
	case StatusFailure, StatusTimedOut:
		return "failure"
	case StatusCancelled:
		return "cancelled"
	}
	return "skipped"
}

func (e *callExpr) eval(s scope) (value, error) {
	switch e.name {
	case "success":
		return boolean(s.success()), nil
	case "failure":
		return boolean(s.failure()), nil
	case "cancelled":
		return boolean(s.cancelled()), nil
	case "always":
		return boolean(true), nil
	}
	args := make([]value, len(e.args))
	for i, a := range e.args {
		v, err := a.eval(s)
		if err != nil {
			return value{}, err
		}
		args[i] = v
	}
	switch e.name {
	case "contains":
		if args[0].k == kArr {
			for _, v := range *args[0].arr {
				if equal(v, args[1]) {
					return boolean(true), nil
				}
			}
			return boolean(false), nil
		}
		return boolean(strings.Contains(strings.ToUpper(args[0].text()), strings.ToUpper(args[1].text()))), nil
	case "startsWith":
		return boolean(strings.HasPrefix(strings.ToUpper(args[0].text()), strings.ToUpper(args[1].text()))), nil
	case "endsWith":
		return boolean(strings.HasSuffix(strings.ToUpper(args[0].text()), strings.ToUpper(args[1].text()))), nil
	case "format":
		out, err := format(args[0].text(), args[1:])
		if err != nil {
			return value{}, evalError(e.pos, "format: %v", err)
		}
		return str(out), nil
	case "join":
		sep := ","
		if len(args) > 1 {
			sep = args[1].text()
		}
		if args[0].k != kArr {
			return str(args[0].text()), nil
		}
		parts := make([]string, len(*args[0].arr))
		for i, v := range *args[0].arr {
			parts[i] = v.text()
		}
		return str(strings.Join(parts, sep)), nil
	case "toJSON":
		var b bytes.Buffer
		writeJSON(&b, args[0], "")
		return str(b.String()), nil
	case "fromJSON":
		v, err := fromJSON(args[0].text())
		if err != nil {
			return value{}, evalError(e.pos, "fromJSON: %v", err)
		}
		return v, nil
	case "hashFiles":
		patterns := make([]string, len(args))
		for i, a := range args {
			patterns[i] = a.text()
		}
		h, err := s.hashFiles(patterns)
		if err != nil {
			return value{}, evalError(e.pos, "hashFiles: %v", err)
		}
		return str(h), nil
	}
	return value{}, evalError(e.pos, "unknown function %q", e.name)
}

// format replaces {0}, {1}... in f by the arguments; {{ and }} are literal braces.
func format(f string, args []value) (string, error) {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		c := f[i]
		switch {
		case c == '{' && i+1 < len(f) && f[i+1] == '{':
			b.WriteByte('{')
			i++
		case c == '}' && i+1 < len(f) && f[i+1] == '}':
			b.WriteByte('}')
			i++
		case c == '{':
			end := strings.IndexByte(f[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("%q: \"{\" at byte %d is not closed; write {{ for a brace", f, i)
			}
			n, err := strconv.Atoi(f[i+1 : i+end])
			if err != nil || n < 0 || strings.ContainsAny(f[i+1:i+end], "+- ") {
				return "", fmt.Errorf("%q: %q is not an argument such as {0}", f, f[i:i+end+1])
			}
			if n >= len(args) {
				return "", fmt.Errorf("%q: {%d}, but there are %d arguments after the format", f, n, len(args))
			}
			b.WriteString(args[n].text())
			i += end
		case c == '}':
			return "", fmt.Errorf("%q: \"}\" at byte %d is not closing a {; write }} for a brace", f, i)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// writeJSON writes v as JSON indented by two spaces, as GitHub's toJSON does. NaN and
// infinities, which JSON has not, are written as null.
func writeJSON(b *bytes.Buffer, v value, indent string) {
	switch v.k {
	case kNull:
		b.WriteString("null")
	case kBool:
		b.WriteString(strconv.FormatBool(v.b))
	case kNum:
		if math.IsNaN(v.n) || math.IsInf(v.n, 0) {
			b.WriteString("null")
			return
		}
		b.WriteString(formatNumber(v.n))
	case kStr:
		writeJSONString(b, v.s)
	case kArr:
		if len(*v.arr) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteString("[\n")
		for i, e := range *v.arr {
			if i > 0 {
				b.WriteString(",\n")
			}
			b.WriteString(indent + "  ")
			writeJSON(b, e, indent+"  ")
		}
		b.WriteString("\n" + indent + "]")
	case kObj:
		if len(v.obj.keys) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteString("{\n")
		for i, k := range v.obj.keys {
			if i > 0 {
				b.WriteString(",\n")
			}
			b.WriteString(indent + "  ")
			writeJSONString(b, k)
			b.WriteString(": ")
			writeJSON(b, v.obj.vals[k], indent+"  ")
		}
		b.WriteString("\n" + indent + "}")
	}
}

// writeJSONString writes s as a JSON string, without escaping <, > and &.
func writeJSONString(b *bytes.Buffer, s string) {
	var tmp bytes.Buffer
	enc := json.NewEncoder(&tmp)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b.Write(bytes.TrimSuffix(tmp.Bytes(), []byte("\n")))
}

// jsonEscaped returns s as writeJSONString writes it, without its quotes: how a secret looks
// in toJSON's output, to be masked there too.
func jsonEscaped(s string) string {
	var b bytes.Buffer
	writeJSONString(&b, s)
	return strings.TrimSuffix(strings.TrimPrefix(b.String(), `"`), `"`)
}

// fromJSON reads a JSON text into a value.
func fromJSON(s string) (value, error) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var x any
	if err := d.Decode(&x); err != nil {
		return value{}, fmt.Errorf("%s is not JSON: %v", quoteShort(s), err)
	}
	if d.More() {
		return value{}, fmt.Errorf("%s is more than one JSON value", quoteShort(s))
	}
	return fromAny(x), nil
}

func quoteShort(s string) string {
	if len(s) > 40 {
		return strconv.Quote(s[:40]) + "..."
	}
	return strconv.Quote(s)
}

func fromAny(x any) value {
	switch x := x.(type) {
	case bool:
		return boolean(x)
	case json.Number:
		f, _ := strconv.ParseFloat(string(x), 64)
		return number(f)
	case string:
		return str(x)
	case []any:
		vs := make([]value, len(x))
		for i, e := range x {
			vs[i] = fromAny(e)
		}
		return array(vs)
	case map[string]any:
		m := make(map[string]value, len(x))
		for k, e := range x {
			m[k] = fromAny(e)
		}
		return object(m)
	}
	return value{}
}
