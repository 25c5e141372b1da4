package ledger

import (
	"fmt"

	"github.com/returnsd/returnsd/money"
)

func parseAmount(s *string) (*money.Amount, error) {
	if s == nil {
		return nil, nil
	}
	a, err := money.Parse(*s, false)
	if err != nil {
		return nil, fmt.Errorf("ledger: amount %q from the database: %w", *s, err)
	}
	return &a, nil
}
