package policy

import (
	"errors"
	"strconv"
	"strings"

	"github.com/opendao/dao"
)

// Op is the operator of a Constraint.
type Op int

// Constraint operators.
const (
	// OpEqual holds when the attribute equals the value: "node.labels.zone == a". A node
	// without the label does not satisfy it.
	OpEqual Op = iota + 1
	// OpNotEqual holds when the attribute differs from the value: "node.labels.disk != hdd".
	// A node without the label satisfies it.
	OpNotEqual
	// OpIn holds when the attribute equals one of the values: "node.labels.zone in (a, b)".
	OpIn
	// OpExists holds when the node has the label: "node.labels.gpu exists". It takes no
	// value; for the other attributes, it holds when the attribute is not empty.
	OpExists
)

func (o Op) String() string {
	switch o {
	case OpEqual:
		return "=="
	case OpNotEqual:
		return "!="
	case OpIn:
		return "in"
	case OpExists:
		return "exists"
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// Attribute prefixes and names a constraint may test.
const (
	// AttrLabelPrefix starts a node label attribute: "node.labels.zone" tests the label zone.
	AttrLabelPrefix = "node.labels."
	AttrNodeID      = "node.id"
	AttrHostname    = "node.hostname"
	AttrOS          = "node.platform.os"
	AttrArch        = "node.platform.arch"
)

// Constraint is one parsed placement constraint, such as "node.labels.zone == a". Parse
// it once with ParseConstraint and test nodes with Match or the Filter it returns; matching
// does not allocate. Values compare exactly (case matters).
type Constraint struct {
	// Attribute is what the constraint tests: AttrLabelPrefix followed by a label key, or
	// one of AttrNodeID, AttrHostname, AttrOS and AttrArch.
	Attribute string
	Op        Op
	// Values holds one value for OpEqual and OpNotEqual, one or more for OpIn, none for
	// OpExists.
	Values []string
}

// SyntaxError is a text that does not parse: a constraint, a spread key or a label filter.
// errors.Is(err, ErrSyntax) holds for it.
type SyntaxError struct {
	// Text is the whole text that was parsed.
	Text string
	// Column is the byte position of the problem in Text, from 1; len(Text)+1 means "at
	// the end".
	Column int
	// Msg says what is wrong there.
	Msg string
}

func (e *SyntaxError) Error() string {
	return "policy: " + dao.Quote(e.Text) + ": column " + strconv.Itoa(e.Column) + ": " + e.Msg
}

// Is reports whether target is ErrSyntax or one of its classes.
func (e *SyntaxError) Is(target error) bool { return errors.Is(ErrSyntax, target) }

// ParseConstraint parses the text form of a constraint:
//
//	node.labels.<key> == <value>
//	node.labels.<key> != <value>
//	node.labels.<key> in (<value>, <value>, ...)
//	node.labels.<key> exists
//
// The attribute may also be node.id, node.hostname, node.platform.os or
// node.platform.arch. A value is a word without blanks, commas, parentheses or quotes, or a
// string in double quotes (with Go escapes) or single quotes. Blanks around operators are
// optional, except around the words in and exists. A malformed text returns a *SyntaxError
// giving the column of the problem.
func ParseConstraint(text string) (Constraint, error) {
	p := parser{text: text}
	var c Constraint
	p.blanks()
	start := p.i
	attr := p.word(false)
	if attr == "" {
		if p.i >= len(text) {
			return c, p.fail(p.i, "empty constraint: want node.labels.<key> followed by ==, !=, in or exists")
		}
		return c, p.fail(p.i, "want an attribute such as node.labels.zone, found "+strconv.Quote(text[p.i:p.i+1]))
	}
	if _, ok := attributeKind(attr); !ok {
		if attr == strings.TrimSuffix(AttrLabelPrefix, ".") || attr == AttrLabelPrefix {
			return c, p.fail(start+len(attr), "want a label key after "+AttrLabelPrefix)
		}
		return c, p.fail(start, "unknown attribute "+dao.Quote(attr)+
			": want node.labels.<key>, node.id, node.hostname, node.platform.os or node.platform.arch")
	}
	c.Attribute = attr
	p.blanks()
	opAt := p.i
	switch {
	case strings.HasPrefix(text[p.i:], "=="):
		c.Op, p.i = OpEqual, p.i+2
	case strings.HasPrefix(text[p.i:], "!="):
		c.Op, p.i = OpNotEqual, p.i+2
	case p.i == len(text):
		return c, p.fail(p.i, "want an operator after "+dao.Quote(attr)+": ==, !=, in or exists")
	case text[p.i] == '=':
		return c, p.fail(p.i, "unknown operator \"=\": want ==, !=, in or exists (did you mean ==?)")
	default:
		if p.i == start+len(attr) {
			// No blank between the attribute and a word operator.
			return c, p.fail(p.i, "unexpected "+strconv.Quote(text[p.i:p.i+1])+": want ==, !=, in or exists")
		}
		switch w := p.word(false); w {
		case "in":
			c.Op = OpIn
		case "exists":
			c.Op = OpExists
		case "":
			return c, p.fail(opAt, "unexpected "+strconv.Quote(text[opAt:opAt+1])+": want ==, !=, in or exists")
		default:
			return c, p.fail(opAt, "unknown operator "+dao.Quote(w)+": want ==, !=, in or exists")
		}
	}
	switch c.Op {
	case OpEqual, OpNotEqual:
		p.blanks()
		v, err := p.value()
		if err != nil {
			return c, err
		}
		c.Values = []string{v}
	case OpIn:
		p.blanks()
		if p.i >= len(text) || text[p.i] != '(' {
			return c, p.fail(p.i, "want ( after in: node.labels.<key> in (a, b)")
		}
		p.i++
		for {
			p.blanks()
			v, err := p.value()
			if err != nil {
				return c, err
			}
			c.Values = append(c.Values, v)
			p.blanks()
			if p.i >= len(text) {
				return c, p.fail(p.i, "want , or ) to continue the list")
			}
			if text[p.i] == ')' {
				p.i++
				break
			}
			if text[p.i] != ',' {
				return c, p.fail(p.i, "unexpected "+strconv.Quote(text[p.i:p.i+1])+": want , or )")
			}
			p.i++
		}
	}
	p.blanks()
	if p.i < len(text) {
		return c, p.fail(p.i, "unexpected "+dao.Quote(text[p.i:])+" after the constraint")
	}
	return c, nil
}

// MustParseConstraint is ParseConstraint for texts known to be valid, such as literals in
// a program; it panics on a malformed text.
func MustParseConstraint(text string) Constraint {
	c, err := ParseConstraint(text)
	if err != nil {
		panic(err)
	}
	return c
}

// String writes c in the text form ParseConstraint reads; parsing it gives c back.
func (c Constraint) String() string {
	var b strings.Builder
	b.WriteString(c.Attribute)
	b.WriteByte(' ')
	b.WriteString(c.Op.String())
	switch c.Op {
	case OpEqual, OpNotEqual:
		b.WriteByte(' ')
		if len(c.Values) > 0 {
			b.WriteString(quoteValue(c.Values[0]))
		}
	case OpIn:
		b.WriteString(" (")
		for i, v := range c.Values {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteValue(v))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// Match reports whether node satisfies c. A nil node satisfies nothing.
func (c Constraint) Match(node *dao.Node) bool {
	kind, _ := attributeKind(c.Attribute)
	return match(kind, labelKey(c.Attribute), c.Op, c.Values, node)
}

// Filter returns a placement filter that refuses the nodes that do not satisfy c with an
// *UnmetConstraint. The filter's name is c's text.
func (c Constraint) Filter() Filter {
	kind, _ := attributeKind(c.Attribute)
	key := labelKey(c.Attribute)
	values := append([]string(nil), c.Values...)
	op := c.Op
	var refusal error = &UnmetConstraint{Constraint: Constraint{c.Attribute, op, values}, reason: c.negation()}
	return Filter{Name: c.String(), Func: func(_ *dao.Task, n *NodeInfo) error {
		if match(kind, key, op, values, n.node) {
			return nil
		}
		return refusal
	}}
}

// UnmetConstraint is the refusal of a node that does not satisfy a constraint. Its text
// states what the node has instead, such as "zone != a". errors.Is(err, ErrConstraint)
// holds for it.
type UnmetConstraint struct {
	Constraint Constraint
	reason     string
}

func (e *UnmetConstraint) Error() string { return e.reason }

// Is reports whether target is ErrConstraint or one of its classes.
func (e *UnmetConstraint) Is(target error) bool { return errors.Is(ErrConstraint, target) }

// negation says, in a few words, why a node fails c: "zone != a", "no label gpu".
func (c Constraint) negation() string {
	name := c.Attribute
	if k := labelKey(name); k != "" {
		name = k
	}
	var b strings.Builder
	b.WriteString("policy: ")
	switch c.Op {
	case OpEqual, OpNotEqual:
		b.WriteString(name)
		if c.Op == OpEqual {
			b.WriteString(" != ")
		} else {
			b.WriteString(" == ")
		}
		if len(c.Values) > 0 {
			b.WriteString(quoteValue(c.Values[0]))
		}
	case OpIn:
		b.WriteString(name)
		b.WriteString(" not in (")
		for i, v := range c.Values {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteValue(v))
		}
		b.WriteByte(')')
	case OpExists:
		if labelKey(c.Attribute) != "" {
			b.WriteString("no label ")
		} else {
			b.WriteString("no ")
		}
		b.WriteString(name)
	default:
		b.WriteString("constraint " + c.String() + " not met")
	}
	return b.String()
}

type attrKind uint8

const (
	attrLabel attrKind = iota + 1
	attrID
	attrHostname
	attrOS
	attrArch
)

func attributeKind(attr string) (attrKind, bool) {
	switch attr {
	case AttrNodeID:
		return attrID, true
	case AttrHostname:
		return attrHostname, true
	case AttrOS:
		return attrOS, true
	case AttrArch:
		return attrArch, true
	}
	if len(attr) > len(AttrLabelPrefix) && strings.HasPrefix(attr, AttrLabelPrefix) {
		return attrLabel, true
	}
	return 0, false
}

// labelKey returns the label key of a node.labels attribute, or "".
func labelKey(attr string) string {
	if len(attr) > len(AttrLabelPrefix) && strings.HasPrefix(attr, AttrLabelPrefix) {
		return attr[len(AttrLabelPrefix):]
	}
	return ""
}

func match(kind attrKind, key string, op Op, values []string, node *dao.Node) bool {
	if node == nil {
		return false
	}
	var v string
	var ok bool
	switch kind {
	case attrLabel:
		v, ok = node.Labels[key]
	case attrID:
		v = node.ID
		ok = v != ""
	case attrHostname:
		v = node.Hostname
		ok = v != ""
	case attrOS:
		v = node.Platform.OS
		ok = v != ""
	case attrArch:
		v = normalizeArch(node.Platform.Architecture)
		ok = v != ""
		if ok && (op == OpEqual || op == OpNotEqual || op == OpIn) {
			for _, want := range values {
				if normalizeArch(want) == v {
					return op != OpNotEqual
				}
			}
			return op == OpNotEqual
		}
	default:
		return false
	}
	switch op {
	case OpEqual:
		return ok && len(values) > 0 && v == values[0]
	case OpNotEqual:
		return !ok || len(values) == 0 || v != values[0]
	case OpIn:
		if !ok {
			return false
		}
		for _, want := range values {
			if v == want {
				return true
			}
		}
		return false
	case OpExists:
		return ok
	}
	return false
}

// parser reads constraint texts.
type parser struct {
	text string
	i    int
}

func (p *parser) fail(at int, msg string) error {
	return &SyntaxError{Text: p.text, Column: at + 1, Msg: msg}
}

func (p *parser) blanks() {
	for p.i < len(p.text) && (p.text[p.i] == ' ' || p.text[p.i] == '\t') {
		p.i++
	}
}

// isDelim reports whether c ends a word. Attributes also end at '=' and '!' so that
// "node.labels.zone==a" reads; values may contain them.
func isDelim(c byte, attr bool) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '(', ')', ',', '"', '\'', '`':
		return true
	case '=', '!':
		return attr
	}
	return false
}

// word reads a run of non-delimiters; inValue says '=' and '!' belong to it.
func (p *parser) word(inValue bool) string {
	start := p.i
	for p.i < len(p.text) && !isDelim(p.text[p.i], !inValue) {
		p.i++
	}
	return p.text[start:p.i]
}

func (p *parser) value() (string, error) {
	if p.i >= len(p.text) {
		return "", p.fail(p.i, "want a value")
	}
	start := p.i
	switch p.text[p.i] {
	case '"', '`':
		q, err := strconv.QuotedPrefix(p.text[p.i:])
		if err != nil {
			return "", p.fail(start, "unterminated or malformed quoted value")
		}
		v, err := strconv.Unquote(q)
		if err != nil {
			return "", p.fail(start, "malformed quoted value")
		}
		p.i += len(q)
		return v, nil
	case '\'':
		end := strings.IndexByte(p.text[p.i+1:], '\'')
		if end < 0 {
			return "", p.fail(start, "unterminated quoted value: want a closing '")
		}
		p.i += end + 2
		return p.text[start+1 : start+1+end], nil
	}
	v := p.word(true)
	if v == "" {
		return "", p.fail(start, "want a value, found "+strconv.Quote(p.text[start:start+1]))
	}
	return v, nil
}

// quoteValue writes v so that the parser reads it back: bare when it is a plain word.
func quoteValue(v string) string {
	if v == "" {
		return `""`
	}
	for i := 0; i < len(v); i++ {
		if isDelim(v[i], false) || v[i] < 0x20 || v[i] >= 0x7f {
			return strconv.Quote(v)
		}
	}
	return v
}

// normalizeArch maps common spellings of an architecture to the OCI (GOARCH) name.
func normalizeArch(a string) string {
	switch a {
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64":
		return "arm64"
	case "i386", "i686":
		return "386"
	}
	return a
}
