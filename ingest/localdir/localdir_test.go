package localdir_test

import (
	"testing"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
	"github.com/returnsd/returnsd/ingest/localdir"
	"github.com/returnsd/returnsd/ingest/sourcetest"
	"github.com/returnsd/returnsd/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestConformance(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T, cfg *config.Source) ingest.Source {
		cfg.Type = config.LocalDir
		s := localdir.New(cfg)
		t.Cleanup(func() { s.Close() })
		return s
	})
}
