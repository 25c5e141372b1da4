// Package netconn holds what every client of a brand's server (SFTP, FTP, IMAP)
// and of the SMTP server needs the same way: a deadline on every read and write,
// and a TLS configuration that verifies the server.
package netconn

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"time"
)

// DeadlineConn puts a deadline on every read and write: a server silent for
// longer than Timeout fails the connection, however long the transfer.
type DeadlineConn struct {
	net.Conn
	Timeout time.Duration
}

func (c *DeadlineConn) Read(b []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.Timeout))
	return c.Conn.Read(b)
}

func (c *DeadlineConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.Timeout))
	return c.Conn.Write(b)
}

// TLSConfig verifies the server at address (host:port) against the PEM
// certificates in caFile, else the system's trusted roots. TLS 1.2 at least;
// never InsecureSkipVerify. Callers add what their protocol needs.
func TLSConfig(address, caFile string) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", address, err)
	}
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", caFile)
		}
	}
	return cfg, nil
}
