package pipeline

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The expression language of conditions (Step.If) and of "${{ }}" in a step's strings. It is
// small on purpose: it reads values and compares them, and it cannot run anything.
//
//	expr    = and { "||" and }
//	and     = not { "&&" not }
//	not     = "!" not | compare
//	compare = primary [ ( "==" | "!=" ) primary ]
//	primary = "(" expr ")" | string | number | "true" | "false" | call | path
//	call    = ( "success" | "failure" | "always" | "cancelled" ) "(" ")"
//	path    = "steps" "." step "." "outputs" "." key | "steps" "." step "." "status"
//	        | "matrix" "." key
//	string  = "'" { any character, "''" for a quote } "'"
//
// Values are strings or booleans. A path to an output that was not written is "". "==" and
// "!=" compare numbers as numbers when both sides are numbers, and otherwise as text (true is
// "true"). As a condition, a string is true unless it is "", "false" or "0".

// maxExprDepth bounds the nesting of an expression, so that no input exhausts the stack.
const maxExprDepth = 64

// exprError is a syntax or reference error at a column (1-based, in bytes) of the text.
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
	tLParen
	tRParen
	tNot
	tEq
	tNe
	tAnd
	tOr
	tClose // "}}", the end of an expression inside a string
)

var tokNames = map[tokKind]string{
	tEOF: "end of expression", tIdent: "name", tString: "string", tNumber: "number",
	tDot: `"."`, tLParen: `"("`, tRParen: `")"`, tNot: `"!"`, tEq: `"=="`, tNe: `"!="`,
	tAnd: `"&&"`, tOr: `"||"`, tClose: `"}}"`,
}

type token struct {
	kind tokKind
	pos  int    // byte offset in the whole text
	text string // identifier, number text, or the string's value
}

// lexer reads tokens from src starting at pos.
type lexer struct {
	src string
	pos int
}

func isIdentStart(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isIdentChar(c byte) bool  { return isIdentStart(c) || c == '-' || '0' <= c && c <= '9' }
func isDigit(c byte) bool      { return '0' <= c && c <= '9' }

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
	switch {
	case two == "==":
		l.pos += 2
		return token{kind: tEq, pos: start}, nil
	case two == "!=":
		l.pos += 2
		return token{kind: tNe, pos: start}, nil
	case two == "&&":
		l.pos += 2
		return token{kind: tAnd, pos: start}, nil
	case two == "||":
		l.pos += 2
		return token{kind: tOr, pos: start}, nil
	case two == "}}":
		l.pos += 2
		return token{kind: tClose, pos: start}, nil
	case c == '!':
		l.pos++
		return token{kind: tNot, pos: start}, nil
	case c == '.':
		l.pos++
		return token{kind: tDot, pos: start}, nil
	case c == '(':
		l.pos++
		return token{kind: tLParen, pos: start}, nil
	case c == ')':
		l.pos++
		return token{kind: tRParen, pos: start}, nil
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
	case isDigit(c):
		for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
			l.pos++
		}
		if l.pos+1 < len(l.src) && l.src[l.pos] == '.' && isDigit(l.src[l.pos+1]) {
			l.pos++
			for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
				l.pos++
			}
		}
		if l.pos < len(l.src) && isIdentChar(l.src[l.pos]) {
			return token{}, &exprError{start + 1, fmt.Sprintf("malformed number %q", l.src[start:l.pos+1])}
		}
		return token{kind: tNumber, pos: start, text: l.src[start:l.pos]}, nil
	case isIdentStart(c):
		for l.pos < len(l.src) && isIdentChar(l.src[l.pos]) {
			l.pos++
		}
		return token{kind: tIdent, pos: start, text: l.src[start:l.pos]}, nil
	case c == '"':
		return token{}, &exprError{start + 1, `strings are quoted with ', not "`}
	case c == '=':
		return token{}, &exprError{start + 1, `"=" is not an operator; compare with "=="`}
	case c == '&' || c == '|':
		return token{}, &exprError{start + 1, fmt.Sprintf("%q is not an operator; use %q", c, string([]byte{c, c}))}
	}
	r, _ := utf8.DecodeRuneInString(l.src[start:])
	return token{}, &exprError{start + 1, fmt.Sprintf("unexpected character %q", r)}
}

// expr is a parsed expression.
type expr interface {
	// String returns the expression in a canonical form that parses to the same expression.
	String() string
	eval(s scope) value
}

type (
	litExpr struct{ v value }
	refExpr struct {
		pos  int
		path []string
	}
	callExpr struct {
		pos  int
		name string
	}
	notExpr struct{ x expr }
	binExpr struct {
		op   tokKind // tEq, tNe, tAnd, tOr
		x, y expr
	}
)

func (e *litExpr) String() string {
	switch {
	case e.v.isBool:
		return strconv.FormatBool(e.v.b)
	case e.v.isNum:
		return e.v.s
	}
	return "'" + strings.ReplaceAll(e.v.s, "'", "''") + "'"
}
func (e *refExpr) String() string  { return strings.Join(e.path, ".") }
func (e *callExpr) String() string { return e.name + "()" }
func (e *notExpr) String() string  { return "!" + e.x.String() }
func (e *binExpr) String() string {
	op := map[tokKind]string{tEq: "==", tNe: "!=", tAnd: "&&", tOr: "||"}[e.op]
	return "(" + e.x.String() + " " + op + " " + e.y.String() + ")"
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
		return nil, p.unexpected(`"&&", "||" or the end`)
	}
	return e, nil
}

func (p *parser) or() (expr, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxExprDepth {
		return nil, p.errorf(p.tok, "expression nested deeper than %d", maxExprDepth)
	}
	x, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.tok.kind == tOr {
		if err := p.advance(); err != nil {
			return nil, err
		}
		y, err := p.and()
		if err != nil {
			return nil, err
		}
		x = &binExpr{op: tOr, x: x, y: y}
	}
	return x, nil
}

func (p *parser) and() (expr, error) {
	x, err := p.not()
	if err != nil {
		return nil, err
	}
	for p.tok.kind == tAnd {
		if err := p.advance(); err != nil {
			return nil, err
		}
		y, err := p.not()
		if err != nil {
			return nil, err
		}
		x = &binExpr{op: tAnd, x: x, y: y}
	}
	return x, nil
}

func (p *parser) not() (expr, error) {
	if p.tok.kind == tNot {
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > maxExprDepth {
			return nil, p.errorf(p.tok, "expression nested deeper than %d", maxExprDepth)
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		x, err := p.not()
		if err != nil {
			return nil, err
		}
		return &notExpr{x: x}, nil
	}
	return p.compare()
}

func (p *parser) compare() (expr, error) {
	x, err := p.primary()
	if err != nil {
		return nil, err
	}
	if op := p.tok.kind; op == tEq || op == tNe {
		if err := p.advance(); err != nil {
			return nil, err
		}
		y, err := p.primary()
		if err != nil {
			return nil, err
		}
		x = &binExpr{op: op, x: x, y: y}
		if k := p.tok.kind; k == tEq || k == tNe {
			return nil, p.errorf(p.tok, "comparisons do not chain; add parentheses")
		}
	}
	return x, nil
}

var functions = map[string]bool{"success": true, "failure": true, "always": true, "cancelled": true}

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
		return &litExpr{v: value{s: t.text, isNum: true}}, p.advance()
	case tIdent:
		if err := p.advance(); err != nil {
			return nil, err
		}
		switch {
		case t.text == "true" || t.text == "false":
			return &litExpr{v: boolean(t.text == "true")}, nil
		case p.tok.kind == tLParen:
			if !functions[t.text] {
				return nil, p.errorf(t, "unknown function %q; want success(), failure(), always() or cancelled()", t.text)
			}
			if err := p.advance(); err != nil {
				return nil, err
			}
			if p.tok.kind != tRParen {
				return nil, p.errorf(p.tok, "%s() takes no arguments", t.text)
			}
			return &callExpr{pos: t.pos, name: t.text}, p.advance()
		}
		path := []string{t.text}
		for p.tok.kind == tDot {
			if err := p.advance(); err != nil {
				return nil, err
			}
			if p.tok.kind != tIdent {
				return nil, p.unexpected("a name after \".\"")
			}
			path = append(path, p.tok.text)
			if err := p.advance(); err != nil {
				return nil, err
			}
		}
		r := &refExpr{pos: t.pos, path: path}
		if err := r.checkShape(); err != nil {
			return nil, err
		}
		return r, nil
	}
	return nil, p.unexpected("a value: a string, a number, true, false, a function call or a name such as steps.<step>.outputs.<key>")
}

// checkShape accepts the paths the language knows.
func (r *refExpr) checkShape() error {
	p := r.path
	switch {
	case p[0] == "steps" && len(p) == 4 && p[2] == "outputs":
	case p[0] == "steps" && len(p) == 3 && p[2] == "status":
	case p[0] == "matrix" && len(p) == 2:
	default:
		return &exprError{r.pos + 1, fmt.Sprintf("unknown name %q; want steps.<step>.outputs.<key>, steps.<step>.status or matrix.<key>", strings.Join(p, "."))}
	}
	return nil
}

// value is the result of an expression: a string (possibly a number literal) or a boolean.
type value struct {
	s      string
	b      bool
	isBool bool
	isNum  bool
}

func str(s string) value       { return value{s: s} }
func boolean(b bool) value     { return value{b: b, isBool: true} }
func (v value) String() string { return v.text() }

func (v value) text() string {
	if v.isBool {
		return strconv.FormatBool(v.b)
	}
	return v.s
}

func (v value) truth() bool {
	if v.isBool {
		return v.b
	}
	return v.s != "" && v.s != "false" && v.s != "0"
}

func equal(x, y value) bool {
	if x.isBool && y.isBool {
		return x.b == y.b
	}
	if !x.isBool && !y.isBool {
		a, errA := strconv.ParseFloat(x.s, 64)
		b, errB := strconv.ParseFloat(y.s, 64)
		if errA == nil && errB == nil {
			return a == b
		}
	}
	return x.text() == y.text()
}

// scope is what an expression reads when it is evaluated.
type scope interface {
	// output returns the named output of a step ("" when it wrote none).
	output(step, key string) string
	// status returns a step's status.
	status(step string) Status
	// matrixValue returns this instance's value of a matrix key.
	matrixValue(key string) string
	// success, failure and cancelled are the functions of the same names.
	success() bool
	failure() bool
	cancelled() bool
}

func (e *litExpr) eval(scope) value { return e.v }

func (e *refExpr) eval(s scope) value {
	switch {
	case e.path[0] == "matrix":
		return str(s.matrixValue(e.path[1]))
	case e.path[2] == "status":
		return str(string(s.status(e.path[1])))
	}
	return str(s.output(e.path[1], e.path[3]))
}

func (e *callExpr) eval(s scope) value {
	switch e.name {
	case "success":
		return boolean(s.success())
	case "failure":
		return boolean(s.failure())
	case "cancelled":
		return boolean(s.cancelled())
	}
	return boolean(true) // always
}

func (e *notExpr) eval(s scope) value { return boolean(!e.x.eval(s).truth()) }

func (e *binExpr) eval(s scope) value {
	switch e.op {
	case tAnd:
		return boolean(e.x.eval(s).truth() && e.y.eval(s).truth())
	case tOr:
		return boolean(e.x.eval(s).truth() || e.y.eval(s).truth())
	case tEq:
		return boolean(equal(e.x.eval(s), e.y.eval(s)))
	}
	return boolean(!equal(e.x.eval(s), e.y.eval(s)))
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
	}
}

// usesStatusFunction reports whether e calls success(), failure(), always() or cancelled():
// a condition that does not is combined with success(), as GitHub Actions does.
func usesStatusFunction(e expr) bool {
	found := false
	walk(e, func(x expr) {
		if _, ok := x.(*callExpr); ok {
			found = true
		}
	})
	return found
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

// render replaces the template's expressions by their values.
func (t *template) render(s scope) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.x == nil {
			b.WriteString(p.lit)
		} else {
			b.WriteString(p.x.eval(s).text())
		}
	}
	return b.String()
}

// refs returns the paths the template's expressions read.
func (t *template) refs() []*refExpr {
	var out []*refExpr
	for _, p := range t.parts {
		if p.x != nil {
			walk(p.x, func(x expr) {
				if r, ok := x.(*refExpr); ok {
					out = append(out, r)
				}
			})
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
