# edgeproxy — run `make help` for the targets.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
BIN       := bin/edgeproxy
CONFIG    ?= config.example.toml
FUZZTIME  ?= 30s
SOAK      ?= 5m
BENCHTIME ?= 2s
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# make install: PREFIX for the binary and unit, SYSCONFDIR for the config,
# DESTDIR to stage everything under another root (packaging, tests).
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
DESTDIR    ?=
BINDIR     := $(PREFIX)/bin
UNITDIR    ?= $(PREFIX)/lib/systemd/system
CONFDIR    := $(SYSCONFDIR)/edgeproxy
DATADIR    := $(PREFIX)/share/edgeproxy

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/edgeproxy
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/edgeproxy

.PHONY: run
run: build ## run edgeproxy with config.example.toml (CONFIG=FILE for another)
	$(BIN) -config $(CONFIG)

.PHONY: check-config
check-config: build ## check CONFIG like nginx -t
	$(BIN) -t -config $(CONFIG)

.PHONY: test
test: vet lint ## go vet, gofmt and staticcheck, then every test with the race detector (fuzz seeds included)
	$(GO) test -race -count=1 -timeout 20m ./...

.PHONY: test-short
test-short: ## the tests without the race detector and the 1 GiB body test
	$(GO) test -short -count=1 ./...

.PHONY: nginx-table
nginx-table: ## regenerate README's nginx directive table from convert/nginx
	UPDATE_README=1 $(GO) test -count=1 -run TestREADMEDirectiveTableIsCurrent ./convert/nginx/

.PHONY: vet
vet: ## go vet and gofmt
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }

.PHONY: lint
lint: ## staticcheck (fetched through the Go module proxy)
	$(GO) run $(STATICCHECK) ./...

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 30s)
	@for pkg in $$(grep -rlE '^func Fuzz[A-Za-z0-9_]+\(' --include='*_test.go' . | xargs -n1 dirname | sort -u); do \
		for target in $$(grep -hoE '^func Fuzz[A-Za-z0-9_]+' $$pkg/*_test.go | sed 's/func //'); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

.PHONY: soak
soak: ## mixed load for SOAK (default 5m): pass-through, coupons, writes, Redis restarts, reloads
	EDGEPROXY_SOAK=$(SOAK) $(GO) test -count=1 -run '^TestSoak$$' -timeout 0 -v ./cmd/edgeproxy

.PHONY: bench-go
bench-go: ## Go micro-benchmarks of the hot paths (allocs reported)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

.PHONY: sample-data
sample-data: ## regenerate testdata/coupons.jsonl
	$(GO) run ./cmd/gencoupons > testdata/coupons.jsonl

.PHONY: install
install: build install-files ## build, then install binary, systemd unit, logrotate and config (PREFIX=/usr/local DESTDIR=)

.PHONY: install-files
install-files: ## install an already built BIN (what install does after build)
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/edgeproxy
	sed -e 's|/usr/local/bin/edgeproxy|$(BINDIR)/edgeproxy|g' -e 's|/etc/edgeproxy|$(CONFDIR)|g' \
		deploy/edgeproxy.service > $(BIN).service
	install -D -m 0644 $(BIN).service $(DESTDIR)$(UNITDIR)/edgeproxy.service
	rm -f $(BIN).service
	install -D -m 0644 deploy/logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/edgeproxy
	install -D -m 0644 testdata/coupons.jsonl $(DESTDIR)$(DATADIR)/coupons.example.jsonl
	install -D -m 0644 config.example.toml $(DESTDIR)$(CONFDIR)/config.example.toml
	@# An operator's config.toml is never overwritten.
	test -e $(DESTDIR)$(CONFDIR)/config.toml || { \
		sed -e 's|"testdata/coupons.jsonl"|"$(DATADIR)/coupons.example.jsonl"|' config.example.toml > $(BIN).toml && \
		install -D -m 0644 $(BIN).toml $(DESTDIR)$(CONFDIR)/config.toml && rm -f $(BIN).toml; }

.PHONY: uninstall
uninstall: ## remove what install put there, except the config under SYSCONFDIR/edgeproxy
	rm -f $(DESTDIR)$(BINDIR)/edgeproxy $(DESTDIR)$(UNITDIR)/edgeproxy.service \
		$(DESTDIR)$(SYSCONFDIR)/logrotate.d/edgeproxy $(DESTDIR)$(DATADIR)/coupons.example.jsonl

.PHONY: clean
clean: ## remove build output
	rm -rf bin

.PHONY: bench
bench: ## edgeproxy vs nginx, side by side (about 15 min); writes docs/benchmarks.md, the charts in docs/ and the README summary
	$(GO) run ./bench

.PHONY: pgo
pgo: ## refresh cmd/edgeproxy/default.pgo (the profile go build optimises with) from one round of make bench's scenarios
	rm -rf .pgo-profiles
	$(GO) run ./bench -only "pass 128,pass 4,POST,coupon,gzip,file" -rounds 1 -profile .pgo-profiles > /dev/null
	$(GO) tool pprof -proto .pgo-profiles/*.pprof > cmd/edgeproxy/default.pgo
	rm -rf .pgo-profiles

.PHONY: bench-short
bench-short: ## a quick smoke run of make bench (not a measurement)
	$(GO) run ./bench -short -out docs/benchmarks-short.md
