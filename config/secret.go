package config

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// Secret is a credential held in memory. It prints as "[redacted]" under
// every fmt verb, so a Config or Source can be logged whole.
//
// In YAML a Secret must be written as a ${VAR} reference, so the secret
// itself lives in the environment (or a secret manager feeding it), never in
// the config file or its repository. Load records whether the value came
// entirely from the environment, and Validate rejects one that did not.
type Secret struct {
	value   string
	fromEnv bool
	missing string     // why a ${VAR} secret has no value here: its variable is unset
	node    *yaml.Node // set while decoding, so Load can look up where the value came from
}

// SecretFromEnv wraps a value read from the environment (or a secret store) by
// Go code, for configs built without YAML, e.g. in tests.
func SecretFromEnv(value string) Secret { return Secret{value: value, fromEnv: true} }

// Reveal returns the secret itself; pass it to the library that needs it and nowhere else.
func (s Secret) Reveal() string { return s.value }

// IsZero reports whether no secret is configured. A secret written as ${VAR}
// whose variable is unset is configured, but Missing.
func (s Secret) IsZero() bool { return s.value == "" && s.missing == "" }

// Missing says why a secret written as ${VAR} has no value here ("environment
// variable X is not set"), or "" when it has one or none is configured.
func (s Secret) Missing() string { return s.missing }

// FromEnv reports whether the value came from a ${VAR} expansion (or SecretFromEnv).
func (s Secret) FromEnv() bool { return s.fromEnv }

// String never shows the value.
func (s Secret) String() string {
	if s.value == "" {
		return ""
	}
	return "[redacted]"
}

// GoString keeps %#v from showing the value.
func (s Secret) GoString() string { return fmt.Sprintf("config.Secret(%q)", s.String()) }

// MarshalText keeps JSON and YAML encodings from showing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalYAML takes a scalar and remembers its node; Load then marks it as
// coming from the environment or not.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a secret must be a scalar such as ${VAR}", n.Line)
	}
	*s = Secret{value: n.Value, node: n}
	return nil
}
