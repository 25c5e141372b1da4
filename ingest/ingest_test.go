package ingest

import "testing"

func TestWanted(t *testing.T) {
	for _, c := range []struct {
		name             string
		include, exclude []string
		want             bool
	}{
		{"returns.csv", []string{"*.csv"}, nil, true},
		{"RETURNS_SAP.CSV", []string{"*.csv"}, nil, true}, // SAP and Windows clients write upper case
		{"Retouren.Xlsx", []string{"*.xlsx"}, nil, true},
		{"returns.txt", []string{"*.csv"}, nil, false},
		{"SKIP_me.csv", []string{"*.csv"}, []string{"skip_*"}, false},
		{"anything", nil, nil, true},
		{"RESULT_x.csv", nil, nil, false},
		{"Receipt_x.csv", []string{"*.csv"}, nil, false},
	} {
		got, why := Wanted(c.name, c.include, c.exclude)
		if got != c.want {
			t.Errorf("Wanted(%q, %q, %q) = %v (%s), want %v", c.name, c.include, c.exclude, got, why, c.want)
		}
		if !got && why == "" {
			t.Errorf("Wanted(%q) says no without saying why", c.name)
		}
	}
}
