# kguard — the two commands that matter: `make run` and `make test`.
GO       ?= go
BIN      := bin/kguard
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
FUZZTIME ?= 20s
IMAGE    ?= kguard:$(VERSION)
IMAGE_ARCHIVE ?= bin/kguard-image.tar

.PHONY: all build run test test-fast bench bench-kafka bench-policy fuzz lint docker image helm-lint clean

all: build

build: ## static binary in bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kguard

run: build ## kguard in front of an in-process 3-broker Kafka, bootstrap 127.0.0.1:9092
	./$(BIN) demo

test: ## everything: installs test deps, starts OpenBao and a real Kafka 4.x cluster, go test -race
	bash test/run-tests.sh

test-fast: ## unit and in-process tests only (no external services)
	$(GO) test -race ./...

bench: ## throughput and latency tables, direct vs through kguard
	$(GO) run ./test/bench

bench-kafka: ## the same against the real 3-node Apache Kafka cluster, plus Kafka's ProducerPerformance and ConsumerPerformance
	bash test/bench-kafka.sh

bench-policy: ## replay 1,000,000 recorded decisions under two policies (kguard policy diff), decisions per second
	$(GO) test -run XXX -bench BenchmarkReplayMillion -benchtime 1x ./policy/review | grep -E '^(REPLAY|Benchmark)'

fuzz: ## run every fuzz target for FUZZTIME each
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test $$pkg -run XXX -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; \
	  done; \
	done

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

docker: ## the image from source with the multi-stage Dockerfile (needs a registry for golang:1.26)
	docker build -t $(IMAGE) .

image: build ## the runtime image FROM scratch from bin/kguard with buildah (no registry), saved to IMAGE_ARCHIVE
	bash deploy/image/build.sh $(BIN) $(IMAGE) $(IMAGE_ARCHIVE)

helm-lint: ## helm lint --strict of deploy/helm/kguard in both modes and with SNI (helm pinned in deploy/go.mod)
	cd deploy && $(GO) tool helm lint --strict helm/kguard -f helm/kguard/ci/gateway-values.yaml
	cd deploy && $(GO) tool helm lint --strict helm/kguard -f helm/kguard/ci/sidecar-values.yaml
	cd deploy && $(GO) tool helm lint --strict helm/kguard -f helm/kguard/ci/gateway-sni-values.yaml

clean:
	rm -rf bin
