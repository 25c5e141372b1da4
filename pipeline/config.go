package pipeline

import (
	"maps"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/processors"
)

// Format is how the processors read a brand's files: its file_format, dates
// without an offset read in its timezone. Aliases are copied, so the
// processors cannot change the Config.
func Format(b *config.Brand) processors.Format {
	f := b.FileFormat
	return processors.Format{
		Encoding:     f.Encoding,
		Delimiter:    f.Delimiter,
		DecimalComma: f.DecimalComma,
		Aliases:      maps.Clone(f.Aliases),
		Location:     b.Location(),
	}
}

// Limits are the config's file limits for the processors; zero fields take
// processors' defaults.
func Limits(l config.Limits) processors.Limits {
	return processors.Limits(l)
}
