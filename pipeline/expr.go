package pipeline

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The expression language of conditions (Step.If) and of "${{ }}" in a step's strings: that
// of GitHub Actions, with its types, its loose comparisons and its functions. It reads values
// and compares them; it cannot run anything.
//
//	expr    = and { "||" and }
//	and     = equal { "&&" equal }
//	equal   = order { ( "==" | "!=" ) order }
//	order   = unary { ( "<" | "<=" | ">" | ">=" ) unary }
//	unary   = "!" unary | postfix
//	postfix = primary { "." name | "[" expr "]" }
//	primary = "(" expr ")" | string | number | "true" | "false" | "null" | call | context
//	call    = function "(" [ expr { "," expr } ] ")"
//	context = "steps" | "matrix" | "env" | "secrets"
//	string  = "'" { any character, "''" for a quote } "'"
//	number  = JSON's numbers, "0x" hexadecimal, "0o" octal, "Infinity", "NaN", with a "-"
//
// The values are null, booleans, numbers, strings, arrays and objects (fromJSON makes the
// last two; the contexts are objects). The semantics are GitHub's:
//
//   - "==" and "!=" compare values of different types as numbers (null is 0, true 1, false
//     0, a string its JSON number, "" 0, anything else NaN); strings compare ignoring case;
//     arrays and objects are equal only to themselves; NaN equals nothing.
//   - "<", "<=", ">" and ">=" compare strings ignoring case, and anything else as numbers.
//   - "&&" and "||" give one of their operands, as in JavaScript: a && b is a when a is
//     falsy, else b; a || b is a when a is truthy, else b. "!" gives a boolean.
//   - falsy are false, 0, -0, NaN, "" and null; everything else is truthy, the string
//     "false" too (compare outputs: steps.x.outputs.ok == 'true').
//   - in a string, null is "", a number its shortest decimal form, an array "Array" and an
//     object "Object".
//
// A path to an output that was not written, or to a missing property, is null.

// maxExprDepth bounds the nesting of an expression, so that no input exhausts the stack.
const maxExprDepth = 64

// exprError is a syntax, reference or evaluation error at a column (1-based, in bytes) of
// the text.
type exprError struct {
	col int
	msg string
}

func (e *exprError) Error() string { return fmt.Sprintf("column %d: %s", e.col, e.msg) }

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tDot
	tComma
	tLParen
	tRParen
	tLBracket
	tRBracket
	tNot
	tEq
	tNe
	tLt
	tLe
	tGt
	tGe
	tAnd
	tOr
	tClose // "}}", the end of an expression inside a string
)

var tokNames = map[tokKind]string{
	tEOF: "end of expression", tIdent: "name", tString: "string", tNumber: "number",
	tDot: `"."`, tComma: `","`, tLParen: `"("`, tRParen: `")"`, tLBracket: `"["`,
	tRBracket: `"]"`, tNot: `"!"`, tEq: `"=="`, tNe: `"!="`, tLt: `"<"`, tLe: `"<="`,
	tGt: `">"`, tGe: `">="`, tAnd: `"&&"`, tOr: `"||"`, tClose: `"}}"`,
}

var opText = map[tokKind]string{
	tEq: "==", tNe: "!=", tLt: "<", tLe: "<=", tGt: ">", tGe: ">=", tAnd: "&&", tOr: "||",
}

type token struct {
	kind tokKind
	pos  int    // byte offset in the whole text
	text string // identifier, number text, or the string's value
	num  float64
}

// lexer reads tokens from src starting at pos.
type lexer struct {
	src string
	pos int
}

func isIdentStart(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isIdentChar(c byte) bool  { return isIdentStart(c) || c == '-' || '0' <= c && c <= '9' }
func isDigit(c byte) bool      { return '0' <= c && c <= '9' }

// isIdent reports whether s is a name that can follow "." in a path.
func isIdent(s string) bool {
	if s == "" || !isIdentStart(s[0]) || s == "NaN" || s == "Infinity" {
		return false // numbers to the lexer
	}
	for i := 1; i < len(s); i++ {
		if !isIdentChar(s[i]) {
			return false
		}
	}
	return true
}

// The operators and punctuation, by their text.
var (
	twoCharTokens = map[string]tokKind{"==": tEq, "!=": tNe, "<=": tLe, ">=": tGe, "&&": tAnd, "||": tOr, "}}": tClose}
	oneCharTokens = map[byte]tokKind{'!': tNot, '.': tDot, ',': tComma, '(': tLParen, ')': tRParen, '[': tLBracket, ']': tRBracket, '<': tLt, '>': tGt}
)

func (l *lexer) next() (token, error) {
	for l.pos < len(l.src) && (l.src[l.pos] == ' ' || l.src[l.pos] == '\t' || l.src[l.pos] == '\n' || l.src[l.pos] == '\r') {
		l.pos++
	}
	start := l.pos
	if l.pos >= len(l.src) {
		return token{kind: tEOF, pos: start}, nil
	}
	c := l.src[l.pos]
	two := ""
	if l.pos+1 < len(l.src) {
		two = l.src[l.pos : l.pos+2]
	}
	if k, ok := twoCharTokens[two]; ok {
		l.pos += 2
		return token{kind: k, pos: start}, nil
	}
	if k, ok := oneCharTokens[c]; ok {
		l.pos++
		return token{kind: k, pos: start}, nil
	}
	switch {
	case c == '\'':
		var b strings.Builder
		l.pos++
		for {
			if l.pos >= len(l.src) {
				return token{}, &exprError{start + 1, "string is not closed with '"}
			}
			if l.src[l.pos] == '\'' {
				if l.pos+1 < len(l.src) && l.src[l.pos+1] == '\'' {
					b.WriteByte('\'')
					l.pos += 2
					continue
				}
				l.pos++
				return token{kind: tString, pos: start, text: b.String()}, nil
			}
			b.WriteByte(l.src[l.pos])
			l.pos++
		}
	case isDigit(c) || c == '-' && l.pos+1 < len(l.src) && (isDigit(l.src[l.pos+1]) || strings.HasPrefix(l.src[l.pos+1:], "Infinity")):
		return l.number(start)
	case isIdentStart(c):
		for l.pos < len(l.src) && isIdentChar(l.src[l.pos]) {
			l.pos++
		}
		text := l.src[start:l.pos]
		switch text {
		case "Infinity":
			return token{kind: tNumber, pos: start, text: text, num: math.Inf(1)}, nil
		case "NaN":
			return token{kind: tNumber, pos: start, text: text, num: math.NaN()}, nil
		}
		return token{kind: tIdent, pos: start, text: text}, nil
	case c == '"':
		return token{}, &exprError{start + 1, `strings are quoted with ', not "`}
	case c == '=':
		return token{}, &exprError{start + 1, `"=" is not an operator; compare with "=="`}
	case c == '&' || c == '|':
		return token{}, &exprError{start + 1, fmt.Sprintf("%q is not an operator; use %q", c, string([]byte{c, c}))}
	case c == '*':
		return token{}, &exprError{start + 1, `object filters (".*") are not supported; name the property`}
	}
	r, _ := utf8.DecodeRuneInString(l.src[start:])
	return token{}, &exprError{start + 1, fmt.Sprintf("unexpected character %q", r)}
}

// number reads a number literal: JSON's, hexadecimal 0x.., octal 0o.., or -Infinity.
func (l *lexer) number(start int) (token, error) {
	if l.src[l.pos] == '-' {
		l.pos++
		if strings.HasPrefix(l.src[l.pos:], "Infinity") {
			l.pos += len("Infinity")
			if l.pos < len(l.src) && isIdentChar(l.src[l.pos]) {
				return token{}, &exprError{start + 1, fmt.Sprintf("malformed number %q", l.src[start:l.pos+1])}
			}
			return token{kind: tNumber, pos: start, text: "-Infinity", num: math.Inf(-1)}, nil
		}
	}
	if strings.HasPrefix(l.src[l.pos:], "0x") || strings.HasPrefix(l.src[l.pos:], "0o") {
		l.pos += 2
	}
	for l.pos < len(l.src) && (isDigit(l.src[l.pos]) || 'a' <= l.src[l.pos]|0x20 && l.src[l.pos]|0x20 <= 'f') {
		if l.src[l.pos]|0x20 == 'e' && l.pos+1 < len(l.src) && (l.src[l.pos+1] == '+' || l.src[l.pos+1] == '-') {
			l.pos++ // an exponent's sign
		}
		l.pos++
	}
	if l.pos+1 < len(l.src) && l.src[l.pos] == '.' && isDigit(l.src[l.pos+1]) {
		l.pos++
		for l.pos < len(l.src) && (isDigit(l.src[l.pos]) || l.src[l.pos]|0x20 == 'e') {
			if l.src[l.pos]|0x20 == 'e' && l.pos+1 < len(l.src) && (l.src[l.pos+1] == '+' || l.src[l.pos+1] == '-') {
				l.pos++
			}
			l.pos++
		}
	}
	text := l.src[start:l.pos]
	if l.pos < len(l.src) && isIdentChar(l.src[l.pos]) {
		return token{}, &exprError{start + 1, fmt.Sprintf("malformed number %q", l.src[start:l.pos+1])}
	}
	n, ok := parseNumber(text)
	if !ok {
		return token{}, &exprError{start + 1, fmt.Sprintf("malformed number %q", text)}
	}
	if math.IsInf(n, 0) {
		return token{}, &exprError{start + 1, fmt.Sprintf("number %s is out of range", text)}
	}
	return token{kind: tNumber, pos: start, text: text, num: n}, nil
}

// parseNumber reads a number as GitHub does: a JSON number with an optional "+", 0x..
// hexadecimal, 0o.. octal, Infinity or NaN, with an optional sign, surrounding spaces ignored.
func parseNumber(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	neg := false
	body := s
	if strings.HasPrefix(body, "-") || strings.HasPrefix(body, "+") {
		neg, body = body[0] == '-', body[1:]
	}
	sign := func(f float64) float64 {
		if neg {
			return -f
		}
		return f
	}
	switch {
	case body == "Infinity":
		return sign(math.Inf(1)), true
	case body == "NaN":
		return math.NaN(), true
	case strings.HasPrefix(body, "0x") || strings.HasPrefix(body, "0o"):
		base := 16
		if body[1] == 'o' {
			base = 8
		}
		u, err := strconv.ParseUint(body[2:], base, 64)
		if err != nil || strings.ContainsAny(body[2:], "+-_") {
			return 0, false
		}
		return sign(float64(u)), true
	}
	// JSON's grammar: no leading zeros, digits on both sides of ".", an exponent.
	i := 0
	digits := func() int {
		j := i
		for i < len(body) && isDigit(body[i]) {
			i++
		}
		return i - j
	}
	n := digits()
	if n == 0 || n > 1 && body[0] == '0' {
		return 0, false
	}
	if i < len(body) && body[i] == '.' {
		i++
		if digits() == 0 {
			return 0, false
		}
	}
	if i < len(body) && body[i]|0x20 == 'e' {
		i++
		if i < len(body) && (body[i] == '+' || body[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, false
		}
	}
	if i != len(body) {
		return 0, false
	}
	f, err := strconv.ParseFloat(body, 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0, false
	}
	return sign(f), true
}

// expr is a parsed expression.
type expr interface {
	// String returns the expression in a canonical form that parses to the same expression.
	String() string
	// eval returns the expression's value, or an *exprError.
	eval(s scope) (value, error)
}

type (
	litExpr struct{ v value }
	// refExpr reads a context: path[0] is "steps", "matrix", "env" or "secrets", and the
	// rest the names after it, written "a.b" or "a['b']".
	refExpr struct {
		pos  int
		path []string
	}
	callExpr struct {
		pos  int
		name string
		args []expr
	}
	notExpr struct{ x expr }
	binExpr struct {
		pos  int
		op   tokKind // tEq, tNe, tLt, tLe, tGt, tGe, tAnd, tOr
		x, y expr
	}
	// indexExpr is x[i] or x.name (i a string literal) past a context's path.
	indexExpr struct {
		pos  int
		x, i expr
	}
)

func (e *litExpr) String() string {
	switch e.v.k {
	case kNull:
		return "null"
	case kBool:
		return strconv.FormatBool(e.v.b)
	case kNum:
		return formatNumber(e.v.n)
	}
	return quote(e.v.s)
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (e *refExpr) String() string {
	var b strings.Builder
	b.WriteString(e.path[0])
	for _, p := range e.path[1:] {
		if isIdent(p) {
			b.WriteString("." + p)
		} else {
			b.WriteString("[" + quote(p) + "]")
		}
	}
	return b.String()
}

func (e *callExpr) String() string {
	args := make([]string, len(e.args))
	for i, a := range e.args {
		args[i] = a.String()
	}
	return e.name + "(" + strings.Join(args, ", ") + ")"
}

func (e *notExpr) String() string { return "!" + e.x.String() }

func (e *binExpr) String() string {
	return "(" + e.x.String() + " " + opText[e.op] + " " + e.y.String() + ")"
}

func (e *indexExpr) String() string {
	x := e.x.String()
	if _, ok := e.x.(*notExpr); ok {
		x = "(" + x + ")"
	}
	if l, ok := e.x.(*litExpr); ok && l.v.k == kNum {
		x = "(" + x + ")"
	}
	return x + "[" + e.i.String() + "]"
}

// parser is a recursive-descent parser over a lexer with one token of lookahead.
type parser struct {
	lex   lexer
	tok   token
	depth int
}

func (p *parser) advance() error {
	t, err := p.lex.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) errorf(t token, format string, args ...any) error {
	return &exprError{t.pos + 1, fmt.Sprintf(format, args...)}
}

func (p *parser) unexpected(want string) error {
	got := tokNames[p.tok.kind]
	switch p.tok.kind {
	case tIdent:
		got = fmt.Sprintf("name %q", p.tok.text)
	case tNumber:
		got = fmt.Sprintf("number %s", p.tok.text)
	case tString:
		got = "string"
	}
	return p.errorf(p.tok, "unexpected %s, want %s", got, want)
}

// parseExpr parses src as a whole expression (a condition).
func parseExpr(src string) (expr, error) {
	p := &parser{lex: lexer{src: src}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tEOF {
		return nil, p.errorf(p.tok, "empty expression")
	}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, p.unexpected("an operator or the end")
	}
	return e, nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxExprDepth {
		return p.errorf(p.tok, "expression nested deeper than %d", maxExprDepth)
	}
	return nil
}

func (p *parser) or() (expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	return p.binary(0)
}

// levels are the binary operators from the loosest to the tightest.
var levels = [][]tokKind{{tOr}, {tAnd}, {tEq, tNe}, {tLt, tLe, tGt, tGe}}

func (p *parser) binary(level int) (expr, error) {
	if level == len(levels) {
		return p.unary()
	}
	x, err := p.binary(level + 1)
	if err != nil {
		return nil, err
	}
	for {
		op := p.tok
		found := false
		for _, k := range levels[level] {
			found = found || op.kind == k
		}
		if !found {
			return x, nil
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		y, err := p.binary(level + 1)
		if err != nil {
			return nil, err
		}
		x = &binExpr{pos: op.pos, op: op.kind, x: x, y: y}
	}
}

func (p *parser) unary() (expr, error) {
	if p.tok.kind == tNot {
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		if err := p.advance(); err != nil {
			return nil, err
		}
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &notExpr{x: x}, nil
	}
	return p.postfix()
}

// The functions, with the least and the most arguments they take (-1: any number).
var functions = map[string][2]int{
	"success": {0, 0}, "failure": {0, 0}, "always": {0, 0}, "cancelled": {0, 0},
	"contains": {2, 2}, "startsWith": {2, 2}, "endsWith": {2, 2}, "format": {1, -1},
	"join": {1, 2}, "toJSON": {1, 1}, "fromJSON": {1, 1}, "hashFiles": {1, -1},
}

// statusFunctions are the functions that say how the steps a step needs ended.
var statusFunctions = map[string]bool{"success": true, "failure": true, "always": true, "cancelled": true}

// contexts are the names an expression may start a path with; otherContexts are those of
// GitHub Actions that Dao does not have, with what to write instead.
var (
	contexts      = map[string]bool{"steps": true, "matrix": true, "env": true, "secrets": true}
	otherContexts = map[string]string{
		"needs":    "steps.<step>: a step reads every step it needs, directly or not, under steps",
		"github":   "env.<name> or steps.<step>.outputs.<key>: Dao has no github context",
		"vars":     "env.<name>: Dao has no vars context",
		"inputs":   "env.<name>: Dao has no inputs context",
		"job":      "steps.<step>.outcome: Dao has no job context",
		"jobs":     "steps.<step>.outcome: Dao has no jobs context",
		"runner":   "env.<name>: Dao has no runner context",
		"strategy": "matrix.<key>: Dao has no strategy context",
	}
)

func (p *parser) postfix() (expr, error) {
	x, err := p.primary()
	if err != nil {
		return nil, err
	}
	for {
		switch p.tok.kind {
		case tDot:
			dot := p.tok
			if err := p.advance(); err != nil {
				return nil, err
			}
			if p.tok.kind != tIdent {
				return nil, p.unexpected(`a name after "."`)
			}
			name := p.tok.text
			if err := p.advance(); err != nil {
				return nil, err
			}
			if r, ok := x.(*refExpr); ok {
				r.path = append(r.path, name)
				continue
			}
			x = &indexExpr{pos: dot.pos, x: x, i: &litExpr{v: str(name)}}
		case tLBracket:
			open := p.tok
			if err := p.advance(); err != nil {
				return nil, err
			}
			i, err := p.or()
			if err != nil {
				return nil, err
			}
			if p.tok.kind != tRBracket {
				return nil, p.unexpected(`"]"`)
			}
			if err := p.advance(); err != nil {
				return nil, err
			}
			if r, ok := x.(*refExpr); ok {
				if l, ok := i.(*litExpr); ok && l.v.k == kStr {
					r.path = append(r.path, l.v.s)
					continue
				}
				if err := r.checkShape(); err != nil {
					return nil, err
				}
			}
			x = &indexExpr{pos: open.pos, x: x, i: i}
		default:
			if r, ok := x.(*refExpr); ok {
				if err := r.checkShape(); err != nil {
					return nil, err
				}
			}
			return x, nil
		}
	}
}

func (p *parser) primary() (expr, error) {
	t := p.tok
	switch t.kind {
	case tLParen:
		if err := p.advance(); err != nil {
			return nil, err
		}
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tRParen {
			return nil, p.unexpected(`")"`)
		}
		return x, p.advance()
	case tString:
		return &litExpr{v: str(t.text)}, p.advance()
	case tNumber:
		return &litExpr{v: number(t.num)}, p.advance()
	case tIdent:
		if err := p.advance(); err != nil {
			return nil, err
		}
		switch {
		case t.text == "true" || t.text == "false":
			return &litExpr{v: boolean(t.text == "true")}, nil
		case t.text == "null":
			return &litExpr{v: value{}}, nil
		case p.tok.kind == tLParen:
			return p.call(t)
		case contexts[t.text]:
			return &refExpr{pos: t.pos, path: []string{t.text}}, nil
		case otherContexts[t.text] != "":
			return nil, p.errorf(t, "unknown name %q; did you mean %s?", t.text, otherContexts[t.text])
		}
		return nil, p.errorf(t, "unknown name %q; want steps.<step>..., matrix.<key>, env.<name>, secrets.<name> or a function call", t.text)
	}
	return nil, p.unexpected("a value: a string, a number, true, false, null, a function call or a name such as steps.<step>.outputs.<key>")
}

// call parses the arguments of a call of the function named by t.
func (p *parser) call(t token) (expr, error) {
	arity, ok := functions[t.text]
	if !ok {
		names := slices.Sorted(maps.Keys(functions))
		if s := suggest(t.text, names); s != "" {
			return nil, p.errorf(t, "unknown function %q; did you mean %s()?", t.text, s)
		}
		return nil, p.errorf(t, "unknown function %q; want one of success(), failure(), always(), cancelled(), contains(), startsWith(), endsWith(), format(), join(), toJSON(), fromJSON() and hashFiles()", t.text)
	}
	if err := p.advance(); err != nil { // "("
		return nil, err
	}
	c := &callExpr{pos: t.pos, name: t.text}
	for p.tok.kind != tRParen {
		if len(c.args) > 0 {
			if p.tok.kind != tComma {
				return nil, p.unexpected(`"," or ")"`)
			}
			if err := p.advance(); err != nil {
				return nil, err
			}
		}
		a, err := p.or()
		if err != nil {
			return nil, err
		}
		c.args = append(c.args, a)
	}
	switch n := len(c.args); {
	case arity[1] == 0 && n > 0:
		return nil, p.errorf(t, "%s() takes no arguments", t.text)
	case n < arity[0] || arity[1] >= 0 && n > arity[1]:
		want := fmt.Sprintf("%d", arity[0])
		switch {
		case arity[1] < 0:
			want = fmt.Sprintf("at least %d", arity[0])
		case arity[1] != arity[0]:
			want = fmt.Sprintf("%d or %d", arity[0], arity[1])
		}
		return nil, p.errorf(t, "%s() takes %s arguments, got %d", t.text, want, n)
	}
	return c, p.advance()
}

// checkShape accepts the paths of contexts the language knows.
func (r *refExpr) checkShape() error {
	p := r.path
	fail := func(format string, args ...any) error {
		return &exprError{r.pos + 1, fmt.Sprintf(format, args...)}
	}
	switch p[0] {
	case "steps":
		if len(p) < 2 {
			return fail("name a step: steps.<step>.outputs.<key>, steps.<step>.outcome, steps.<step>.conclusion or steps.<step>.status")
		}
		if len(p) == 2 {
			return nil
		}
		switch p[2] {
		case "outputs":
			if len(p) <= 4 {
				return nil
			}
			return fail("%q: an output is a string; it has no %q", r.String(), p[4])
		case "outcome", "conclusion", "status":
			if len(p) == 3 {
				return nil
			}
			return fail("%q: steps.<step>.%s is a string; it has no %q", r.String(), p[2], p[3])
		}
		return fail("unknown name %q; want steps.<step>.outputs.<key>, steps.<step>.outcome, steps.<step>.conclusion or steps.<step>.status", r.String())
	default: // matrix, env, secrets
		if len(p) > 2 {
			return fail("%q: %s.%s is a string; it has no %q", r.String(), p[0], p[1], p[2])
		}
	}
	return nil
}

// eval errors are at the expression's column.
func evalError(pos int, format string, args ...any) error {
	return &exprError{pos + 1, fmt.Sprintf(format, args...)}
}

func (e *litExpr) eval(scope) (value, error) { return e.v, nil }

func (e *refExpr) eval(s scope) (value, error) {
	var root value
	switch e.path[0] {
	case "steps":
		// Only the step named: the others may not be readable.
		root = object(nil)
		if st, ok := s.stepState(e.path[1]); ok {
			root.obj.set(e.path[1], st.value())
		}
	case "matrix":
		root = strObject(s.matrixValues())
	case "env":
		root = strObject(s.envValues())
	case "secrets":
		root = strObject(s.secretValues())
	}
	v := root
	for _, name := range e.path[1:] {
		v = v.index(str(name))
	}
	return v, nil
}

func (e *indexExpr) eval(s scope) (value, error) {
	x, err := e.x.eval(s)
	if err != nil {
		return value{}, err
	}
	i, err := e.i.eval(s)
	if err != nil {
		return value{}, err
	}
	return x.index(i), nil
}

func (e *notExpr) eval(s scope) (value, error) {
	x, err := e.x.eval(s)
	return boolean(!x.truth()), err
}

func (e *binExpr) eval(s scope) (value, error) {
	x, err := e.x.eval(s)
	if err != nil {
		return value{}, err
	}
	switch e.op {
	case tAnd:
		if !x.truth() {
			return x, nil
		}
		return e.y.eval(s)
	case tOr:
		if x.truth() {
			return x, nil
		}
		return e.y.eval(s)
	}
	y, err := e.y.eval(s)
	if err != nil {
		return value{}, err
	}
	switch e.op {
	case tEq:
		return boolean(equal(x, y)), nil
	case tNe:
		return boolean(!equal(x, y)), nil
	}
	c, ok := compare(x, y)
	if !ok {
		return boolean(false), nil
	}
	switch e.op {
	case tLt:
		return boolean(c < 0), nil
	case tLe:
		return boolean(c <= 0), nil
	case tGt:
		return boolean(c > 0), nil
	}
	return boolean(c >= 0), nil
}

// walk calls f for every node of e.
func walk(e expr, f func(expr)) {
	f(e)
	switch e := e.(type) {
	case *notExpr:
		walk(e.x, f)
	case *binExpr:
		walk(e.x, f)
		walk(e.y, f)
	case *indexExpr:
		walk(e.x, f)
		walk(e.i, f)
	case *callExpr:
		for _, a := range e.args {
			walk(a, f)
		}
	}
}

// usesStatusFunction reports whether e calls success(), failure(), always() or cancelled():
// a condition that does not is combined with success(), as GitHub Actions does.
func usesStatusFunction(e expr) bool {
	found := false
	walk(e, func(x expr) {
		if c, ok := x.(*callExpr); ok && statusFunctions[c.name] {
			found = true
		}
	})
	return found
}

// refsOf returns the context paths e reads.
func refsOf(e expr) []*refExpr {
	var out []*refExpr
	walk(e, func(x expr) {
		if r, ok := x.(*refExpr); ok {
			out = append(out, r)
		}
	})
	return out
}

// template is a string with "${{ expr }}" parts.
type template struct {
	parts []templatePart
}

type templatePart struct {
	lit string
	x   expr // nil for a literal part
}

// parseTemplate splits s into literal text and expressions. An unclosed "${{" is an error;
// text without "${{" is one literal.
func parseTemplate(s string) (*template, error) {
	t := &template{}
	rest := 0
	for {
		i := strings.Index(s[rest:], "${{")
		if i < 0 {
			if rest < len(s) {
				t.parts = append(t.parts, templatePart{lit: s[rest:]})
			}
			return t, nil
		}
		if i > 0 {
			t.parts = append(t.parts, templatePart{lit: s[rest : rest+i]})
		}
		start := rest + i
		p := &parser{lex: lexer{src: s, pos: start + 3}}
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind == tClose || p.tok.kind == tEOF {
			return nil, &exprError{start + 1, `empty "${{ }}"`}
		}
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tClose {
			return nil, p.unexpected(`"}}"`)
		}
		t.parts = append(t.parts, templatePart{x: x})
		rest = p.lex.pos
	}
}

// hasExpr reports whether the template holds an expression.
func (t *template) hasExpr() bool {
	for _, p := range t.parts {
		if p.x != nil {
			return true
		}
	}
	return false
}

// render replaces the template's expressions by their values, as strings.
func (t *template) render(s scope) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.x == nil {
			b.WriteString(p.lit)
			continue
		}
		v, err := p.x.eval(s)
		if err != nil {
			return "", err
		}
		b.WriteString(v.text())
	}
	return b.String(), nil
}

// refs returns the paths the template's expressions read.
func (t *template) refs() []*refExpr {
	var out []*refExpr
	for _, p := range t.parts {
		if p.x != nil {
			out = append(out, refsOf(p.x)...)
		}
	}
	return out
}

// parseCondition parses a step's If: an expression, optionally written as "${{ expr }}".
func parseCondition(s string) (expr, error) {
	trimmed := strings.TrimSpace(s)
	if strings.HasPrefix(trimmed, "${{") && strings.HasSuffix(trimmed, "}}") {
		t, err := parseTemplate(s)
		if err != nil {
			return nil, err
		}
		if len(t.parts) == 1 && t.parts[0].x != nil || onlyBlankLiterals(t) {
			for _, p := range t.parts {
				if p.x != nil {
					return p.x, nil
				}
			}
		}
		return nil, &exprError{1, `a condition is one expression; write it without "${{ }}" or with one pair around it all`}
	}
	return parseExpr(s)
}

func onlyBlankLiterals(t *template) bool {
	n := 0
	for _, p := range t.parts {
		if p.x != nil {
			n++
		} else if strings.TrimSpace(p.lit) != "" {
			return false
		}
	}
	return n == 1
}
