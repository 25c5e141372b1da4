package outcome

import (
	"os"
	"strings"
	"testing"
)

// TestEveryCodeIsDocumented keeps docs/outcomes.md in step with the code: brands
// read the table to learn what a code means, so a code missing there is a defect.
func TestEveryCodeIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/outcomes.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for _, c := range Codes {
		if !strings.Contains(text, "| `"+string(c)+"` |") {
			t.Errorf("row code %s has no row in docs/outcomes.md", c)
		}
	}
	for _, c := range QuarantineCodes {
		if !strings.Contains(text, "| `"+string(c)+"` |") {
			t.Errorf("quarantine code %s has no row in docs/outcomes.md", c)
		}
	}
	for _, s := range []FileStatus{Completed, DuplicateFile, Quarantined} {
		if !strings.Contains(text, "| `"+string(s)+"` |") {
			t.Errorf("file status %s has no row in docs/outcomes.md", s)
		}
	}
}

func TestIsCodeKnowsExactlyTheDocumentedCodes(t *testing.T) {
	for _, c := range Codes {
		if !IsCode(c) {
			t.Errorf("IsCode(%s) = false", c)
		}
	}
	if IsCode("NO_SUCH_CODE") || IsCode("") {
		t.Error("IsCode accepts a code that is not in the closed set")
	}
}
