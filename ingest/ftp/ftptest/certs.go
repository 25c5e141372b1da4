package ftptest

import (
	"crypto/tls"
	"os"
	"path/filepath"

	"github.com/returnsd/returnsd/internal/tlstest"
)

// Certificates are a throwaway certificate authority and a server certificate it
// signed for 127.0.0.1 and localhost, written as PEM files in a folder (vsftpd
// reads its certificate from files).
type Certificates struct {
	CAFile   string // the CA's certificate: what a client's ca_file names
	CertFile string // the server's certificate
	KeyFile  string // the server's private key
	Server   tls.Certificate
}

// NewCertificates makes a CA and a server certificate in dir. Each call makes a
// new CA, so the CAFile of one call does not verify the server of another.
func NewCertificates(dir string) (*Certificates, error) {
	ca, err := tlstest.NewCA("returnsd ftptest CA")
	if err != nil {
		return nil, err
	}
	server, err := ca.Issue()
	if err != nil {
		return nil, err
	}
	c := &Certificates{CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server.key"), Server: server.TLS}
	if c.CAFile, err = ca.WriteCA(dir, "ca.pem"); err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.CertFile, server.CertPEM, 0o600); err != nil {
		return nil, err
	}
	return c, os.WriteFile(c.KeyFile, server.KeyPEM, 0o600)
}
