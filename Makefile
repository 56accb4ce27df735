# Dao: the two commands of README.md, and the longer runs.
#   make demo   installs missing packages, runs examples/quickstart on a private containerd
#   make test   installs missing packages, runs every test against the real daemons
#   make bench  runs the side-by-side benchmarks of BENCHMARKS.md
#   make race   runs every test under the race detector (slower; not part of make test)
# Go is the one on PATH or at /usr/local/go when it is as new as go.mod says, else the one that
# scripts/install-go.sh installs: scripts/go finds it, installing it first, at each use.
GO ?= $(CURDIR)/scripts/go
GOFMT ?= $(CURDIR)/scripts/gofmt
TEST_TIMEOUT ?= 20m

.PHONY: all deps demo test race vet unit bench fuzz clean

all: vet test

deps:
	@./scripts/install-deps.sh
	@./scripts/install-go.sh >/dev/null

demo: deps
	$(GO) run ./examples/quickstart

vet:
	$(GO) vet ./...
	@test -z "$$($(GOFMT) -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; $(GOFMT) -l .; exit 1; }

# Integration tests skip only when DAO_REQUIRE_INTEGRATION is unset; here it is set, so a
# missing containerd, runc or registry fails the run instead of hiding it.
test: deps vet
	DAO_REQUIRE_INTEGRATION=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -p 2 ./...

race: deps vet
	DAO_REQUIRE_INTEGRATION=1 $(GO) test -race -count=1 -timeout 40m -p 2 ./...

# Pure-logic tests only, no daemons: quick feedback while editing.
unit:
	$(GO) test -short ./...

bench: deps
	$(GO) run ./internal/bench/start
	$(GO) run ./internal/bench/recovery
	$(GO) run ./internal/bench/scheduler
	cd internal/bench/scheduler/swarmkit && $(GO) run -mod=mod .
	$(GO) run ./internal/bench/cluster
	$(GO) run ./internal/bench/converge
	$(GO) run ./internal/bench/pull -runs 5
	$(GO) run ./internal/bench/pipeline
	$(GO) run ./internal/bench/remote
	$(GO) run ./internal/bench/agent
	$(GO) run ./internal/bench/failover
	$(GO) run ./internal/bench/etcd
	$(GO) run ./internal/bench/hub

# Each fuzzer for a minute; the corpus grows under testdata/fuzz when a failure is found.
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzServiceSpecJSON -fuzztime=60s .
	$(GO) test -run='^$$' -fuzz=FuzzParseConstraint -fuzztime=60s ./policy/
	$(GO) test -run='^$$' -fuzz=FuzzParseReference -fuzztime=60s ./registry/name/
	$(GO) test -run='^$$' -fuzz=FuzzDecodeManifest -fuzztime=60s ./registry/oci/
	$(GO) test -run='^$$' -fuzz=FuzzParseWWWAuthenticate -fuzztime=60s ./registry/remote/
	$(GO) test -run='^$$' -fuzz='^FuzzParseExpr$$' -fuzztime=60s ./pipeline/
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=60s ./pipeline/
	$(GO) test -run='^$$' -fuzz=FuzzMask -fuzztime=60s ./pipeline/
	$(GO) test -run='^$$' -fuzz=FuzzRegistriesConfig -fuzztime=60s ./examples/dao/
	$(GO) test -run='^$$' -fuzz='^FuzzLines$$' -fuzztime=60s ./pipeline/
	$(GO) test -run='^$$' -fuzz=FuzzOpenBoltStore -fuzztime=60s ./orchestrator/
	$(GO) test -run='^$$' -fuzz=FuzzEtcdValue -fuzztime=60s ./orchestrator/
	$(GO) test -run='^$$' -fuzz=FuzzPutManifest -fuzztime=60s ./registry/registrytest/
	$(GO) test -run='^$$' -fuzz=FuzzRequest -fuzztime=60s ./registry/registrytest/
	$(GO) test -run='^$$' -fuzz=FuzzParseJoinToken -fuzztime=60s ./cluster/pki/
	$(GO) test -run='^$$' -fuzz='^FuzzLoadState$$' -fuzztime=60s ./cluster/pki/
	$(GO) test -run='^$$' -fuzz=FuzzAgentMessage -fuzztime=60s ./cluster/
	$(GO) test -run='^$$' -fuzz=FuzzRequest -fuzztime=60s ./registry/server/

clean:
	$(GO) clean -testcache
