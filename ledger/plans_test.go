package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/returnsd/returnsd/internal/pgtest"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/processors"
)

// The tables that grow with the ledger, every day, whatever the size of a file.
var ledgerTables = map[string]bool{"actions": true, "ledger_events": true, "file_rows": true, "request_ids": true}

// TestApplyFindsItsRowsThroughIndexes applies a small file to a large ledger and
// reads every plan PostgreSQL ran for it (auto_explain, sent to the client as a
// notice): none may read one of the ledger's growing tables whole, by a
// sequential scan or a full index scan, or the cost of a daily file of a
// thousand rows follows the size of the ledger instead. The proportions are a
// real platform's: a file of 2% of the ledger (a 100,000-row file on 5,000,000
// actions plans the same way), with fresh statistics.
func TestApplyFindsItsRowsThroughIndexes(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	var mu sync.Mutex
	var plans []string
	collect := false
	l, err := open(ctx, url, nil, 0, func(cfg *pgxpool.Config) {
		cfg.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
			mu.Lock()
			defer mu.Unlock()
			if collect && strings.Contains(n.Message, "plan:") {
				plans = append(plans, n.Message)
			}
		}
		cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
			_, err := c.Exec(ctx, `LOAD 'auto_explain';
				SET auto_explain.log_min_duration = 0;
				SET auto_explain.log_nested_statements = on;
				SET auto_explain.log_format = json;
				SET auto_explain.log_level = notice`)
			return err
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	if err := l.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.SyncBrands(ctx, testBrands()); err != nil {
		t.Fatal(err)
	}
	b := &testBundle{ctx: ctx, t: t}

	// A ledger of 100,000 actions, each created by an import (one event and one
	// RequestId each), and an older file's 100,000 outcomes.
	const n = 100_000
	old := b.receive(l, "acme")
	b.exec(l, `INSERT INTO partners (id) VALUES (77) ON CONFLICT DO NOTHING`)
	b.exec(l, `
		INSERT INTO actions (id, brand_id, partner_id, tracker_id, oid, event_date, currency, state,
			amount, payout, original_amount, original_payout)
		SELECT i, (SELECT id FROM brands WHERE slug = 'acme'), 77, 1001, 'O-' || i,
			timestamptz '2026-11-01' + i * interval '1 second', 'USD', 'PENDING', 100, 8.5, 100, 8.5
		FROM generate_series(1, $1) i`, n)
	b.exec(l, `
		INSERT INTO ledger_events (brand_id, action_id, kind, actor, file_id, line, new_state, new_amount, new_payout)
		SELECT brand_id, id, 'CREATE', 'test', $1, id + 1, 'PENDING', amount, payout FROM actions`, old)
	b.exec(l, `
		INSERT INTO file_rows (file_id, line, outcome, code, message)
		SELECT $1, i + 1 + $2, 'REJECTED', 'ACTION_NOT_FOUND', 'x' FROM generate_series(1, $2) i`, old, n)
	b.exec(l, `
		INSERT INTO request_ids (brand_id, request_id, content_hash, file_id, line)
		SELECT brand_id, 'R-' || id, 'h', $1, id + 1 FROM actions`, old)
	b.exec(l, "VACUUM ANALYZE")

	// A daily file of 2,000 rows: by ActionId and by Oid, several rows for one
	// action, unknown actions, RequestIds new and already applied.
	var rows []processors.ActionUpdate
	for i := range 2000 {
		id := int64(1 + i*37%n)
		u := processors.ActionUpdate{ActionID: id, Operation: processors.Modify, Amount: amt("60.00"), HasAmount: true}
		switch {
		case i%10 == 1:
			u = processors.ActionUpdate{Oid: fmt.Sprintf("O-%d", id), TrackerID: 1001, Operation: processors.Reverse, Reason: "ITEM_RETURNED"}
		case i%10 == 2:
			u.ActionID = n + 10_000 + int64(i)
		case i%10 == 3:
			u.RequestID = fmt.Sprintf("R-%d", i)
		case i%10 == 4:
			u.Operation, u.HasAmount = processors.Approve, false
		case i%10 == 5:
			u.ActionID = int64(1 + i/50) // five rows for one action: five rounds
		}
		rows = append(rows, u)
	}
	mu.Lock()
	collect = true
	mu.Unlock()
	sum, got := b.apply(l, "acme", rows...)
	if _, err := l.FileSummary(ctx, sum.FileID); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	collect = false
	mu.Unlock()
	if sum.Rows != 2000 || len(got) != 2000 || sum.Applied == 0 || sum.ByCode[outcome.ActionNotFound] != 200 {
		t.Fatalf("the file was not applied as written: %+v, %d outcomes", sum, len(got))
	}

	if len(plans) < 5 {
		t.Fatalf("only %d plans seen: auto_explain sent no notices", len(plans))
	}
	for _, p := range plans {
		var logged struct {
			Query string          `json:"Query Text"`
			Plan  json.RawMessage `json:"Plan"`
		}
		if err := json.Unmarshal([]byte(p[strings.Index(p, "{"):]), &logged); err != nil {
			t.Fatalf("a plan auto_explain sent cannot be read: %v\n%s", err, p)
		}
		var plan planNode
		if err := json.Unmarshal(logged.Plan, &plan); err != nil {
			t.Fatal(err)
		}
		if whole := plan.readsWhole(); whole != "" {
			t.Errorf("%s\nin the plan of\n%s", whole, strings.TrimSpace(logged.Query))
		}
	}
}

// planNode is a node of a plan in EXPLAIN's JSON format.
type planNode struct {
	Type      string     `json:"Node Type"`
	Relation  string     `json:"Relation Name"`
	Index     string     `json:"Index Name"`
	IndexCond string     `json:"Index Cond"`
	Plans     []planNode `json:"Plans"`
}

// readsWhole names the first node under p that reads a ledger table whole.
func (p planNode) readsWhole() string {
	if ledgerTables[p.Relation] {
		switch p.Type {
		case "Seq Scan":
			return "a sequential scan of " + p.Relation
		case "Index Scan", "Index Only Scan":
			if p.IndexCond == "" {
				return "a full scan of " + p.Relation + " by its index " + p.Index
			}
		}
	}
	for _, c := range p.Plans {
		if w := c.readsWhole(); w != "" {
			return w
		}
	}
	return ""
}
