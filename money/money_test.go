package money

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in     string
		comma  bool
		want   Amount
		wantEr error
	}{
		{"12", false, 1200, nil},
		{"12.5", false, 1250, nil},
		{"12.50", false, 1250, nil},
		{"0.01", false, 1, nil},
		{".5", false, 50, nil},
		{"1,234.56", false, 123456, nil},
		{"1.500", false, 150, nil},
		{" 7 ", false, 700, nil},
		{"12,5", true, 1250, nil},
		{"1.234,56", true, 123456, nil},
		{"0", false, 0, nil},
		{"12.345", false, 0, ErrPrecision},
		{"-1", false, 0, ErrNegative},
		{"abc", false, 0, ErrSyntax},
		{"", false, 0, ErrSyntax},
		{"1,23", false, 0, ErrSyntax},
		{"12,5", false, 0, ErrSyntax},
		{"$12", false, 0, ErrSyntax},
		{"1e3", false, 0, ErrSyntax},
		{"9999999999999", false, 0, ErrRange},
		{"999999999999.99", false, Max, nil},
	}
	for _, c := range cases {
		got, err := Parse(c.in, c.comma)
		if !errors.Is(err, c.wantEr) || got != c.want {
			t.Errorf("Parse(%q, comma=%v) = %v, %v; want %v, %v", c.in, c.comma, got, err, c.want, c.wantEr)
		}
	}
}

func TestStringRoundTrips(t *testing.T) {
	t.Parallel()
	for _, a := range []Amount{0, 1, 10, 100, 123456, Max} {
		got, err := Parse(a.String(), false)
		if err != nil || got != a {
			t.Errorf("Parse(%q) = %v, %v; want %v", a.String(), got, err, a)
		}
	}
	if s := Amount(-150).String(); s != "-1.50" {
		t.Errorf("Amount(-150).String() = %q", s)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"12.50", "1,234.56", "1.234,56", "-3", ".", ",", "00.10"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, comma bool) {
		a, err := Parse(s, comma)
		if err != nil {
			return
		}
		if a < 0 || a > Max {
			t.Fatalf("Parse(%q) = %v out of range", s, a)
		}
		if b, err := Parse(a.String(), false); err != nil || b != a {
			t.Fatalf("round trip of %q: %v -> %q -> %v, %v", s, a, a.String(), b, err)
		}
	})
}
