# Tollgate. `make help` lists the targets.
GO ?= go
BIN ?= bin

.PHONY: help build test lint fmt bench demo run clean

help:
	@echo "build  - build cmd/extproc (and the demo tools) into $(BIN)/"
	@echo "test   - all tests with the race detector (what CI runs)"
	@echo "lint   - gofmt, go vet, staticcheck"
	@echo "bench  - Go benchmarks and a short load run against the no-op floor"
	@echo "demo   - the whole stack locally with fake providers: no Envoy, no keys, no Redis"
	@echo "run    - extproc alone on its embedded demo config"

build:
	$(GO) build -o $(BIN)/ ./cmd/extproc ./internal/fakeprovider/cmd/fakeprovider ./internal/envoysim/cmd/envoysim ./bench/noop ./bench/cmd/loadgen

test:
	$(GO) test -race -count=1 ./...

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/transform/ ./pkg/accounting/ ./internal/extproc/
	$(GO) build -o $(BIN)/extproc ./cmd/extproc
	bash bench/compare.sh '$(BIN)/extproc -config bench/tollgate.yaml' -duration 5s -concurrency 8

demo:
	bash scripts/demo.sh

run:
	$(GO) run ./cmd/extproc

clean:
	rm -rf $(BIN)
