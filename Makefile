# airlock — run `make help` for the targets.
GO ?= go
PKGS ?= ./...

.PHONY: help build test test-short bench fuzz vet fmt

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/airlock
	$(GO) build -o bin/airlock ./cmd/airlock

test: ## run every test with -race, on SQLite and on a throwaway PostgreSQL (started when possible)
	@set -e; \
	if [ -z "$$AIRLOCK_TEST_POSTGRES" ]; then \
		if out=$$(.ci/start-postgres 2>/dev/null); then eval "$$out"; \
		else echo "note: could not start PostgreSQL (.ci/start-postgres); the PostgreSQL store tests will be skipped"; fi; \
	fi; \
	$(GO) test -race -count=1 $(PKGS)

test-short: ## quick tests without -race and without PostgreSQL
	$(GO) test -count=1 $(PKGS)

bench: ## run the benchmarks (store, audit) and print their figures
	@set -e; \
	if [ -z "$$AIRLOCK_TEST_POSTGRES" ]; then out=$$(.ci/start-postgres 2>/dev/null) && eval "$$out" || true; fi; \
	$(GO) test -run '^$$' -bench . -benchtime 3x ./internal/audit/... ./internal/store/...

fuzz: ## fuzz each parser of outside data for FUZZTIME (default 30s)
	$(GO) test ./internal/resource -run '^$$' -fuzz FuzzDecode -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./internal/audit -run '^$$' -fuzz FuzzVerifyExport -fuzztime $${FUZZTIME:-30s}

vet: ## go vet and gofmt check
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
