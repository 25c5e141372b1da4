// Package returnsd holds what the binary carries with it: the example
// configuration it runs on when none is given, and the demo's fixture files.
package returnsd

import "embed"

// ExampleConfig is config.example.yaml.
//
//go:embed config.example.yaml
var ExampleConfig []byte

// Fixtures holds sample brand files, used by the tests and the demo.
//
//go:embed fixtures
var Fixtures embed.FS
