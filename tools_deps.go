//go:build tools

package tools

import (
	_ "github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/pressly/goose/v3"
	_ "github.com/xuri/excelize/v2"
	_ "go.uber.org/goleak"
	_ "golang.org/x/term"
	_ "golang.org/x/text/encoding/charmap"
	_ "gopkg.in/yaml.v3"
)
