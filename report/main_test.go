package report

import (
	"testing"

	"github.com/returnsd/returnsd/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
