// Package sources opens the ingest.Source of a configured source, whatever its
// type: the one place that knows every adapter, for the command line and the
// daemon alike.
package sources

import (
	"fmt"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
	"github.com/returnsd/returnsd/ingest/ftp"
	"github.com/returnsd/returnsd/ingest/imap"
	"github.com/returnsd/returnsd/ingest/localdir"
	"github.com/returnsd/returnsd/ingest/sftp"
)

// Open returns the Source for a configured source; an imap source mails its
// results through smtp. Nothing connects until the source is first used.
func Open(sc *config.Source, smtp *config.SMTP) (ingest.Source, error) {
	switch sc.Type {
	case config.LocalDir:
		return localdir.New(sc), nil
	case config.SFTP:
		return sftp.New(sc), nil
	case config.FTP:
		return ftp.New(sc), nil
	case config.IMAP:
		return imap.New(sc, smtp), nil
	}
	return nil, fmt.Errorf("source %s: %s sources are not supported", sc.Name, sc.Type)
}
