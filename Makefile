# Releases are tags vX.Y.Z; between them, and with no tag, the base in
# VERSION (packaging/version.sh says how).
VERSION ?= $(shell packaging/version.sh 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
PKG     := github.com/shopbridge/shopbridge
LDFLAGS := -s -w -X $(PKG).Version=$(VERSION) -X $(PKG).Commit=$(COMMIT) -X $(PKG).BuildDate=$(DATE)
export CGO_ENABLED ?= 0

.PHONY: build test lint bench
build:
	go build -trimpath -ldflags '$(LDFLAGS)' -o bin/shopbridge ./cmd/shopbridge

test:
	CGO_ENABLED=1 go test -race -count=1 ./...

# staticcheck at a pinned version, run from the module proxy: no go.mod
# entry, no install step.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	go vet ./...
	@test -z "$$(gofmt -l .)" || (gofmt -l .; exit 1)
	go run $(STATICCHECK) ./...

.PHONY: demo run bench
# The whole flow on one machine: the upstream simulator with the seed
# journal's bills, and the daemon syncing with it (mDNS off here).
demo: build
	@echo "demo: simulator on 127.0.0.1:8481 (control 8482), shopbridge on 127.0.0.1:8480, data in ./demo-data"
	@echo "try: curl -s localhost:8480/api/v2/list | head -c 300; curl -s localhost:8480/admin/api/status"
	@bin/shopbridge crmsim --listen 127.0.0.1:8481 --control 127.0.0.1:8482 & sim=$$!; \
	trap 'kill $$sim 2>/dev/null' EXIT INT TERM; \
	bin/shopbridge run --listen 127.0.0.1:8480 --data ./demo-data --mdns=false --config /dev/null \
		--upstream http://127.0.0.1:8481 --sync-interval 5s

# The daemon alone on its embedded demo bills, no upstream.
run: build
	bin/shopbridge run --listen 127.0.0.1:8480 --data ./demo-data --mdns=false --demo

bench: build
	./bench/run.sh

.PHONY: screenshots
# The README's console screenshots (docs/console-*.png), from a daemon and
# the simulator with realistic data, in headless chromium.
screenshots:
	SHOPBRIDGE_SCREENSHOTS=$(CURDIR)/docs go test -count=1 -run '^TestConsoleScreenshots$$' -v ./daemon/

.PHONY: crmsim fuzz-crmsim
# The upstream simulator alone, in the foreground (API :8481, control :8482).
crmsim: build
	bin/shopbridge crmsim --listen 127.0.0.1:8481 --control 127.0.0.1:8482

# -fuzzminimizetime keeps the fuzzer from spending a minute minimizing each
# large new input.
fuzz-crmsim:
	go test -run '^$$' -fuzz FuzzParseData -fuzztime 30s -fuzzminimizetime 100x ./crmsim/

.PHONY: dist test-packages tools
# The Debian/Ubuntu packages make dist and the tests need
# (packaging/apt-packages.txt, the same list CI installs); needs root.
tools:
	packaging/install-tools.sh

# linux/amd64, linux/arm64, windows/amd64: tar.gz, zip, .deb, .rpm, .msi
# and SHA256SUMS in dist/. Says which tool is missing before it builds.
dist:
	VERSION='$(VERSION)' COMMIT='$(COMMIT)' BUILD_DATE='$(DATE)' LDFLAGS='$(LDFLAGS)' packaging/dist.sh

# Package contents, .deb install/upgrade/remove, the Windows build and the
# .msi under Wine in a loopback-only network namespace. Needs root.
test-packages:
	STRICT=1 packaging/test.sh all
