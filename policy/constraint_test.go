package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opendao/dao"
)

func TestParseConstraint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		want Constraint
	}{
		{"node.labels.zone == a", Constraint{"node.labels.zone", OpEqual, []string{"a"}}},
		{"node.labels.zone==a", Constraint{"node.labels.zone", OpEqual, []string{"a"}}},
		{"  node.labels.zone\t==  a  ", Constraint{"node.labels.zone", OpEqual, []string{"a"}}},
		{"node.labels.disk != hdd", Constraint{"node.labels.disk", OpNotEqual, []string{"hdd"}}},
		{"node.labels.disk!=hdd", Constraint{"node.labels.disk", OpNotEqual, []string{"hdd"}}},
		{"node.labels.gpu exists", Constraint{"node.labels.gpu", OpExists, nil}},
		{"node.labels.zone in (a, b)", Constraint{"node.labels.zone", OpIn, []string{"a", "b"}}},
		{"node.labels.zone in(a,b,c)", Constraint{"node.labels.zone", OpIn, []string{"a", "b", "c"}}},
		{"node.labels.zone in ( a )", Constraint{"node.labels.zone", OpIn, []string{"a"}}},
		{`node.labels.owner == "team a"`, Constraint{"node.labels.owner", OpEqual, []string{"team a"}}},
		{`node.labels.owner == 'team, b'`, Constraint{"node.labels.owner", OpEqual, []string{"team, b"}}},
		{`node.labels.owner == ""`, Constraint{"node.labels.owner", OpEqual, []string{""}}},
		{`node.labels.x in ("a b", 'c', d)`, Constraint{"node.labels.x", OpIn, []string{"a b", "c", "d"}}},
		{"node.labels.topology.kubernetes.io/zone == eu-west-1a",
			Constraint{"node.labels.topology.kubernetes.io/zone", OpEqual, []string{"eu-west-1a"}}},
		{"node.labels.a == x=y", Constraint{"node.labels.a", OpEqual, []string{"x=y"}}},
		{"node.id == n1", Constraint{"node.id", OpEqual, []string{"n1"}}},
		{"node.hostname != h1", Constraint{"node.hostname", OpNotEqual, []string{"h1"}}},
		{"node.platform.os == linux", Constraint{"node.platform.os", OpEqual, []string{"linux"}}},
		{"node.platform.arch in (amd64, arm64)", Constraint{"node.platform.arch", OpIn, []string{"amd64", "arm64"}}},
	}
	for _, tt := range tests {
		got, err := ParseConstraint(tt.text)
		if err != nil {
			t.Errorf("ParseConstraint(%q): %v", tt.text, err)
			continue
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("ParseConstraint(%q) (-want +got):\n%s", tt.text, d)
		}
	}
}

func TestParseConstraintErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text   string
		column int
		msg    string // a part of the message
	}{
		{"", 1, "empty constraint"},
		{"   ", 4, "empty constraint"},
		{"node.labels.zone = a", 18, `unknown operator "=": want ==, !=, in or exists (did you mean ==?)`},
		{"node.labels.zone=a", 17, `did you mean ==?`},
		{"node.labels.zone", 17, "want an operator"},
		{"node.labels.zone ~= a", 18, `unknown operator "~"`},
		{"node.labels.zone equals a", 18, `unknown operator "equals"`},
		{"node.labels.zone ==", 20, "want a value"},
		{"node.labels.zone == a b", 23, `unexpected "b" after the constraint`},
		{"node.labels.zone == (a)", 21, `want a value, found "("`},
		{"node.labels. == a", 13, "want a label key"},
		{"node.labels == a", 12, "want a label key"},
		{"node.label.zone == a", 1, `unknown attribute "node.label.zone"`},
		{"zone == a", 1, `unknown attribute "zone"`},
		{"== a", 1, `want an attribute such as node.labels.zone, found "="`},
		{"node.labels.zone in a, b", 21, "want ( after in"},
		{"node.labels.zone in (a, b", 26, "want , or ) to continue the list"},
		{"node.labels.zone in (a; b)", 25, `unexpected "b": want , or )`}, // "a;" is a value
		{"node.labels.zone in ()", 22, `want a value, found ")"`},
		{"node.labels.zone in (a,)", 24, `want a value, found ")"`},
		{"node.labels.zone exists now", 25, `unexpected "now"`},
		{`node.labels.zone == "a`, 21, "unterminated or malformed quoted value"},
		{`node.labels.zone == 'a`, 21, "unterminated quoted value"},
		{"node.labels.zone(a)", 17, `unexpected "("`},
	}
	for _, tt := range tests {
		_, err := ParseConstraint(tt.text)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("ParseConstraint(%q): got error %v, want a *SyntaxError", tt.text, err)
			continue
		}
		if !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseConstraint(%q): errors.Is(err, ErrSyntax) is false", tt.text)
		}
		if se.Column != tt.column || !strings.Contains(se.Msg, tt.msg) || se.Text != tt.text {
			t.Errorf("ParseConstraint(%q): got column %d %q, want column %d containing %q", tt.text, se.Column, se.Msg, tt.column, tt.msg)
		}
	}
}

func TestSyntaxErrorText(t *testing.T) {
	t.Parallel()
	_, err := ParseConstraint("node.labels.zone = a")
	got := err.Error()
	want := `policy: "node.labels.zone = a": column 18: unknown operator "=": want ==, !=, in or exists (did you mean ==?)`
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestConstraintString(t *testing.T) {
	t.Parallel()
	tests := []struct{ text, want string }{
		{"node.labels.zone==a", "node.labels.zone == a"},
		{"node.labels.zone in(a,b)", "node.labels.zone in (a, b)"},
		{"node.labels.gpu   exists", "node.labels.gpu exists"},
		{`node.labels.o == 'x y'`, `node.labels.o == "x y"`},
		{`node.labels.o != ""`, `node.labels.o != ""`},
		{"node.labels.o == a=b", "node.labels.o == a=b"},
		{`node.labels.o in ("(", ",")`, `node.labels.o in ("(", ",")`},
	}
	for _, tt := range tests {
		c := MustParseConstraint(tt.text)
		if got := c.String(); got != tt.want {
			t.Errorf("MustParseConstraint(%q).String() = %q, want %q", tt.text, got, tt.want)
		}
		back, err := ParseConstraint(c.String())
		if err != nil {
			t.Errorf("ParseConstraint(%q): %v", c.String(), err)
		} else if d := cmp.Diff(c, back); d != "" {
			t.Errorf("round trip of %q (-want +got):\n%s", tt.text, d)
		}
	}
}

func TestMustParseConstraintPanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("MustParseConstraint of a malformed text did not panic")
		}
	}()
	MustParseConstraint("node.labels.zone = a")
}

func TestConstraintMatch(t *testing.T) {
	t.Parallel()
	node := &dao.Node{ID: "n1", Hostname: "host-1",
		Labels:   map[string]string{"zone": "a", "disk": "ssd", "empty": ""},
		Platform: dao.Platform{OS: "linux", Architecture: "x86_64"}}
	bare := &dao.Node{ID: "n2"}
	tests := []struct {
		text string
		node *dao.Node
		want bool
	}{
		{"node.labels.zone == a", node, true},
		{"node.labels.zone == A", node, false}, // case matters
		{"node.labels.zone == b", node, false},
		{"node.labels.zone == a", bare, false},
		{"node.labels.zone != b", node, true},
		{"node.labels.zone != a", node, false},
		{"node.labels.zone != a", bare, true}, // a node without the label is not "a"
		{"node.labels.zone in (b, a)", node, true},
		{"node.labels.zone in (b, c)", node, false},
		{"node.labels.zone in (a)", bare, false},
		{"node.labels.empty exists", node, true},
		{`node.labels.empty == ""`, node, true},
		{`node.labels.missing == ""`, node, false},
		{"node.labels.gpu exists", node, false},
		{"node.id == n1", node, true},
		{"node.id != n1", bare, true},
		{"node.hostname == host-1", node, true},
		{"node.hostname exists", bare, false},
		{"node.platform.os == linux", node, true},
		{"node.platform.arch == amd64", node, true}, // x86_64 is amd64
		{"node.platform.arch == x86-64", node, true},
		{"node.platform.arch != amd64", node, false},
		{"node.platform.arch in (arm64, amd64)", node, true},
		{"node.platform.arch in (arm64)", node, false},
		{"node.platform.arch == amd64", bare, false},
		{"node.platform.arch != amd64", bare, true},
		{"node.labels.zone == a", nil, false},
	}
	for _, tt := range tests {
		c := MustParseConstraint(tt.text)
		if got := c.Match(tt.node); got != tt.want {
			t.Errorf("%q.Match(%v) = %v, want %v", tt.text, tt.node, got, tt.want)
		}
		ni := NewNodeInfo(nil, tt.node)
		if tt.node == nil {
			continue
		}
		err := c.Filter().Func(&dao.Task{}, ni)
		if (err == nil) != tt.want {
			t.Errorf("%q filter on %v: got %v, want match %v", tt.text, tt.node.ID, err, tt.want)
		}
	}
}

func TestUnmetConstraint(t *testing.T) {
	t.Parallel()
	tests := []struct{ text, want string }{
		{"node.labels.zone == a", "policy: zone != a"},
		{"node.labels.zone != a", "policy: zone == a"},
		{"node.labels.zone in (a, b)", "policy: zone not in (a, b)"},
		{"node.labels.gpu exists", "policy: no label gpu"},
		{"node.hostname exists", "policy: no node.hostname"},
		{"node.platform.os == linux", "policy: node.platform.os != linux"},
		{`node.labels.o == "x y"`, `policy: o != "x y"`},
	}
	n := NewNodeInfo(nil, &dao.Node{ID: "n", Labels: map[string]string{"zone": "a"}})
	other := NewNodeInfo(nil, &dao.Node{ID: "m", Labels: map[string]string{"zone": "c"}})
	for _, tt := range tests {
		f := MustParseConstraint(tt.text).Filter()
		err := f.Func(&dao.Task{}, other)
		if err == nil {
			err = f.Func(&dao.Task{}, n)
		}
		if err == nil {
			t.Errorf("%q: both nodes pass", tt.text)
			continue
		}
		if got := err.Error(); got != tt.want {
			t.Errorf("%q: refusal %q, want %q", tt.text, got, tt.want)
		}
		var u *UnmetConstraint
		if !errors.As(err, &u) || !errors.Is(err, ErrConstraint) || u.Constraint.String() != MustParseConstraint(tt.text).String() {
			t.Errorf("%q: refusal %#v is not an *UnmetConstraint naming the constraint", tt.text, err)
		}
		if f.Name != MustParseConstraint(tt.text).String() {
			t.Errorf("%q: filter name %q", tt.text, f.Name)
		}
	}
}

func TestOpString(t *testing.T) {
	t.Parallel()
	for op, want := range map[Op]string{OpEqual: "==", OpNotEqual: "!=", OpIn: "in", OpExists: "exists", 0: "Op(0)"} {
		if got := op.String(); got != want {
			t.Errorf("Op(%d).String() = %q, want %q", int(op), got, want)
		}
	}
}

func FuzzParseConstraint(f *testing.F) {
	for _, s := range []string{
		"node.labels.zone == a", "node.labels.zone!=b", "node.labels.gpu exists",
		"node.labels.zone in (a, b)", `node.labels.o == "x\ty"`, `node.labels.o == 'x'`,
		"node.id == n1", "node.platform.arch in (amd64)", "node.labels.zone = a", "", "(",
		"node.labels.a in (", `node.labels.a == "\xff"`, "node.labels.é == ü",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseConstraint(text)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("ParseConstraint(%q): error %T, want *SyntaxError", text, err)
			}
			if se.Column < 1 || se.Column > len(text)+1 {
				t.Fatalf("ParseConstraint(%q): column %d out of 1..%d", text, se.Column, len(text)+1)
			}
			// The error quotes the text cut to dao.MaxQuoted runes, however long it is.
			if n := len(err.Error()); n > 1024 {
				t.Fatalf("ParseConstraint of %d bytes: error of %d bytes: %.200s", len(text), n, err)
			}
			return
		}
		// A parsed constraint writes back to a text that parses to itself, and its filter
		// and refusal text work without panicking.
		back, err := ParseConstraint(c.String())
		if err != nil {
			t.Fatalf("ParseConstraint(%q) = %q, which does not parse: %v", text, c.String(), err)
		}
		if d := cmp.Diff(c, back); d != "" {
			t.Fatalf("round trip of %q via %q (-want +got):\n%s", text, c.String(), d)
		}
		n := NewNodeInfo(nil, &dao.Node{ID: "n", Labels: map[string]string{labelKey(c.Attribute): "v"}})
		if err := c.Filter().Func(&dao.Task{}, n); err != nil && err.Error() == "" {
			t.Fatalf("empty refusal for %q", text)
		}
	})
}
