# Relay: make help lists the targets.
GO       ?= go
BIN      := bin/relay
TOOLS    := $(CURDIR)/.tools
STATICCHECK := $(TOOLS)/staticcheck
AMQP_URL ?= $(or $(RELAY_AMQP_URL),amqp://guest:guest@127.0.0.1:5672/)

.PHONY: help build run test unit lint broker bench fuzz clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/relay
	$(GO) build -o $(BIN) ./cmd/relay

run: build ## run a standalone node on 127.0.0.1:8080 in open mode
	RELAY_AMQP_URL= RELAY_JWT_SECRET= RELAY_JWT_SECRET_FILE= ./$(BIN) serve -addr 127.0.0.1:8080

test: lint broker build ## format check, vet, lint, then every test (race detector on) against the real broker
	RELAY_AMQP_URL=$(AMQP_URL) $(GO) test -race -count=1 -timeout 10m ./...

unit: ## the tests that need no broker
	$(GO) test -race -count=1 ./codec ./poller

lint: $(STATICCHECK) ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

$(STATICCHECK):
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

broker: ## make sure RabbitMQ answers on RELAY_AMQP_URL (starts or installs it if it can)
	@RELAY_AMQP_URL=$(AMQP_URL) ./deploy/broker.sh

bench: ## Go benchmarks (codec, fan-out), with allocations
	$(GO) test -run '^$$' -bench . -benchmem ./...

fuzz: ## run each fuzz target for 30s
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 30s ./codec
	$(GO) test -run '^$$' -fuzz '^FuzzValidate$$' -fuzztime 30s ./codec
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s ./poller
	$(GO) test -run '^$$' -fuzz '^FuzzWalk$$' -fuzztime 30s ./bench/loadgen
	$(GO) test -run '^$$' -fuzz '^FuzzFrames$$' -fuzztime 30s ./bench/loadgen

clean: ## remove build outputs
	rm -rf bin
