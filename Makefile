# returnsd — run `make help` for the targets.
.DEFAULT_GOAL := help
GO ?= go

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: demo
demo: build ## the whole product on this machine: PostgreSQL, SFTP/IMAP/SMTP, brands' files, the daemon (Ctrl-C stops)
	@bin/returnsd demo $(DEMO_FLAGS)

.PHONY: test
test: ## every test (installs what it needs; starts a throwaway PostgreSQL)
	@scripts/test

.PHONY: bench
bench: ## paired runs, medians of 3: a 1M-row update file on 1M actions against the floor (rows/s, peak RSS), a 10k-row file against the floor, one 100k-row file on 100k vs 5M actions; the lifecycle over 1M actions; 100k inquiries auto-approved; 100 MB over SFTP; idle returnsd run with 100 sources; the ops pages' day view (1,000 files, 5M rows) and page 500 of a 1M-row file (BENCH_FLAGS=-apply-only, -small-only, -scale-only, -lifecycle-only, -auto-approve-only, -sftp-only, -idle-only or -web-only for one alone)
	$(GO) run ./internal/bench $(BENCH_FLAGS)

.PHONY: build
build: ## build bin/returnsd
	$(GO) build -o bin/returnsd ./cmd/returnsd

.PHONY: image-check
image-check: ## build the container image's final stage with podman and run its binary (skips without podman)
	@scripts/image-check

.PHONY: lint
lint: ## gofmt and go vet
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

.PHONY: fuzz
fuzz: ## run every fuzz target of every package for 30s (FUZZTIME=2m for longer)
	@for pkg in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep ^Fuzz); do \
			echo "== $$pkg $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $${FUZZTIME:-30s} -fuzzminimizetime 200x $$pkg || exit 1; \
		done; \
	done

.PHONY: clean
clean: ## remove build output
	rm -rf bin
