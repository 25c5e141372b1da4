# returnsd — run `make help` for the targets.
.DEFAULT_GOAL := help
GO ?= go

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  make %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: demo
demo: ## the whole flow on embedded defaults against a throwaway PostgreSQL
	@scripts/demo

.PHONY: test
test: ## every test (installs what it needs; starts a throwaway PostgreSQL)
	@scripts/test

.PHONY: bench
bench: ## 1M actions, 1M-row update file: rows/s, peak RSS, and the floor; 100 MB over SFTP vs the sftp client; idle returnsd run
	$(GO) run ./internal/bench

.PHONY: build
build: ## build bin/returnsd
	$(GO) build -o bin/returnsd ./cmd/returnsd

.PHONY: lint
lint: ## gofmt and go vet
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

.PHONY: fuzz
fuzz: ## run each fuzz target for 30s
	@for t in $$($(GO) test -list '^Fuzz' ./processors/ | grep ^Fuzz); do \
		$(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime 30s -fuzzminimizetime 5s ./processors/ || exit 1; done
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s ./money/

.PHONY: clean
clean: ## remove build output
	rm -rf bin
