package pipeline_test

import (
	"context"
	"testing"

	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/processors"
)

func TestARefusedFileIsKeptAndQuarantinedNeverApplied(t *testing.T) {
	t.Parallel()
	p, b := setup(t)
	ctx := context.Background()
	before := b.actions(t)
	// Perfectly good returns, from a sender the source refused.
	params := b.params(b.fixture(t, "acme_returns.csv"), "")
	params.Name = "message-7.eml"
	params.Refuse = &processors.FileError{Code: outcome.SenderNotAllowed, Reason: "the sender mallory@evil.example is not allowed"}
	result := b.result(t)
	params.Result = result
	res, err := p.Process(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != outcome.Quarantined || res.Code != outcome.SenderNotAllowed || res.Reason != params.Refuse.Reason ||
		res.WroteResult || result.Len() != 0 || res.FileID == 0 {
		t.Fatalf("result %+v (result file %q)", res, result.String())
	}
	if after := b.actions(t); after != before {
		t.Errorf("a refused file changed the ledger:\n%s\nwas:\n%s", after, before)
	}
	if n := b.queryInt(t, `SELECT count(*) FROM received_files WHERE id = $1 AND status = 'QUARANTINED'
		AND reason_code = 'SENDER_NOT_ALLOWED' AND bytes_kept AND name = 'message-7.eml'`, res.FileID); n != 1 {
		t.Errorf("the refused file is not kept quarantined")
	}
	if n := b.queryInt(t, "SELECT count(*) FROM received_file_chunks WHERE file_id = $1", res.FileID); n == 0 {
		t.Error("its bytes were not kept")
	}

	// The same bytes, not refused, are applied afterwards: a refusal is no
	// application, so they are no duplicate.
	params.Refuse, params.Name, params.Result = nil, "acme_returns.csv", nil
	res, err = p.Process(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	wantReturnsApplied(t, res)
}
