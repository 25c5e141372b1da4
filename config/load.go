package config

import (
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads a YAML config from r, expands ${VAR} references with getenv,
// decodes it rejecting unknown fields, applies WithDefaults and validates it.
//
// Expansion happens only inside scalar values, after YAML is parsed, so a
// variable's value is always one plain string (or number, or bool where the
// field wants one) and can never add keys or list items:
//
//   - ${VAR} is the value of VAR; if VAR is unset or empty, Load fails naming
//     VAR and the YAML path. getenv cannot tell unset from empty, so both count
//     as unset. The exception is a secret of a source or of smtp (password):
//     unset, it leaves that source unusable (Config.SourceUnusable) and the
//     rest of the config working, so one missing secret stops one source.
//   - ${VAR:-default} is the value of VAR, or default (up to the first '}')
//     when VAR is unset or empty; ${VAR:-} allows an empty value.
//   - $$ is a literal '$'; any other '$' is kept as it is.
//   - Inside a flow mapping ({a: b}) quote the reference: {days: "${DAYS}"}.
//     The quotes do not make the value a string: it fills an int or bool
//     field like an unquoted one.
//
// Values are not expanded again, and mapping keys are never expanded.
// Every problem found at one stage is reported, joined with errors.Join.
func Load(r io.Reader, getenv func(string) string) (*Config, error) {
	c, err := decode(r, getenv)
	if err != nil {
		return nil, err
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadFile is Load on the named file; every line of an error starts with the file name.
func LoadFile(path string, getenv func(string) string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError already names the file
	}
	defer f.Close()
	c, err := Load(f, getenv)
	if err != nil {
		return nil, &fileError{path: path, err: err}
	}
	return c, nil
}

// fileError prefixes each line of a (possibly joined) error with the file
// name, so every problem reads "returnsd.yaml: brands[0].id: ...".
type fileError struct {
	path string
	err  error
}

func (e *fileError) Error() string {
	lines := strings.Split(e.err.Error(), "\n")
	for i, l := range lines {
		lines[i] = e.path + ": " + l
	}
	return strings.Join(lines, "\n")
}

func (e *fileError) Unwrap() error { return e.err }

// decode is Load without defaults and validation.
func decode(r io.Reader, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	dec := yaml.NewDecoder(r)
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("config is empty")
		}
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("config holds more than one YAML document (a second --- line?)")
	}

	x := expander{getenv: getenv, fromEnv: map[*yaml.Node]bool{}, missing: map[*yaml.Node]string{}, seen: map[*yaml.Node]bool{}}
	x.walk(&root, "")
	if len(x.errs) > 0 {
		return nil, errors.Join(x.errs...)
	}

	var errs []error
	checkFields(&root, reflect.TypeFor[Config](), "", &errs)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	var c Config
	if err := root.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	secrets := []*Secret{&c.SMTP.PasswordEnv}
	for i := range c.Sources {
		secrets = append(secrets, &c.Sources[i].PasswordEnv)
	}
	for _, p := range secrets {
		p.fromEnv = p.node != nil && x.fromEnv[p.node]
		if p.node != nil {
			p.missing = x.missing[p.node]
		}
		p.node = nil
	}
	return &c, nil
}

// expander expands ${VAR} in scalar values in place.
type expander struct {
	getenv func(string) string
	// fromEnv holds the scalars whose whole value came from the environment:
	// at least one variable, and no literal text or default around it.
	fromEnv map[*yaml.Node]bool
	// missing holds the secrets whose variable is unset, with why.
	missing map[*yaml.Node]string
	seen    map[*yaml.Node]bool // anchored nodes are reachable twice
	errs    []error
}

// secretPath matches the YAML paths of the secrets that may be missing.
var secretPath = regexp.MustCompile(`^(sources\[\d+\]|smtp)\.password$`)

var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (x *expander) walk(n *yaml.Node, path string) {
	if n == nil || x.seen[n] {
		return
	}
	x.seen[n] = true
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			x.walk(c, path)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			x.walk(n.Content[i+1], joinPath(path, n.Content[i].Value))
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			x.walk(c, fmt.Sprintf("%s[%d]", path, i))
		}
	case yaml.ScalarNode:
		x.scalar(n, path)
	}
	// Alias nodes point at a node that was walked where it was defined.
}

func (x *expander) scalar(n *yaml.Node, path string) {
	s := n.Value
	if !strings.Contains(s, "$") {
		return
	}
	var b strings.Builder
	literal, envUsed := false, false
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			break
		}
		if i > 0 {
			literal = true
		}
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$$"):
			b.WriteByte('$')
			literal = true
			s = s[2:]
		case strings.HasPrefix(s, "${"):
			end := strings.IndexByte(s, '}')
			if end < 0 {
				x.errorf(n, path, "unclosed ${ in %q", n.Value)
				return
			}
			ref := s[2:end]
			s = s[end+1:]
			name, def, hasDef := strings.Cut(ref, ":-")
			if !varName.MatchString(name) {
				x.errorf(n, path, "${%s} is not a variable reference (want ${NAME} or ${NAME:-default}; write $$ for a literal $)", ref)
				return
			}
			v := x.getenv(name)
			switch {
			case v != "":
				envUsed = true
			case hasDef:
				v = def
				if def != "" {
					literal = true
				}
			case secretPath.MatchString(path):
				x.missing[n] = fmt.Sprintf("environment variable %s is not set", name)
				x.fromEnv[n] = true
				n.Value, n.Tag, n.Style = "", "", yaml.DoubleQuotedStyle
				return
			default:
				x.errorf(n, path, "environment variable %s is not set (use ${%s:-default} to allow that)", name, name)
				return
			}
			b.WriteString(v)
		default:
			b.WriteByte('$')
			literal = true
			s = s[1:]
		}
	}
	if s != "" {
		literal = true
		b.WriteString(s)
	}
	n.Value = b.String()
	x.fromEnv[n] = envUsed && !literal
	// Quotes around a reference only protect ${} from YAML (flow mappings
	// need them); read the value like a plain scalar so "${DAYS}" fills an
	// int. String fields still get the value verbatim.
	// The parser typed the scalar from its text ("${DAYS}" is a !!str); let
	// the decoder type it from the new value instead, unless a tag says otherwise.
	if n.Style&yaml.TaggedStyle == 0 {
		n.Tag = ""
		if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 {
			n.Style = 0
		}
	}
	// A plain scalar whose new value reads as null (~, null) would decode to
	// an empty string; keep it the string the variable holds.
	if n.Style == 0 && n.Value != "" {
		switch n.Value {
		case "~", "null", "Null", "NULL":
			n.Style = yaml.DoubleQuotedStyle
		}
	}
}

func (x *expander) errorf(n *yaml.Node, path, format string, args ...any) {
	x.errs = append(x.errs, fmt.Errorf("%s (line %d): %s", path, n.Line, fmt.Sprintf(format, args...)))
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var (
	yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// checkFields reports every mapping key that t has no field for, with its
// YAML path and line. yaml.v3 can reject unknown fields only when decoding
// from a reader, and then without the path, so Load checks the node tree itself.
func checkFields(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil {
		return
	}
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			checkFields(c, t, path, errs)
		}
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(yamlUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type mismatch
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" && k.Tag == "!!merge" {
				for _, m := range mergeSources(v) {
					checkFields(m, t, path, errs)
				}
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				msg := fmt.Sprintf("%s (line %d): unknown field", joinPath(path, k.Value), k.Line)
				if near := nearest(k.Value, fields); near != "" {
					msg += fmt.Sprintf("; did you mean %s?", near)
				}
				*errs = append(*errs, errors.New(msg))
				continue
			}
			checkFields(v, ft, joinPath(path, k.Value), errs)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				checkFields(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				checkFields(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value), errs)
			}
		}
	}
}

func mergeSources(v *yaml.Node) []*yaml.Node {
	if v.Kind == yaml.SequenceNode {
		return v.Content
	}
	return []*yaml.Node{v}
}

// yamlFields maps the YAML names of t's fields to their types, the way yaml.v3 names them.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			for k, v := range yamlFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

// nearest returns the known field within two edits of name, for typos.
func nearest(name string, fields map[string]reflect.Type) string {
	best, bestDist := "", 3
	for k := range fields {
		if d := editDistance(strings.ToLower(name), k); d < bestDist || (d == bestDist && k < best) {
			best, bestDist = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
