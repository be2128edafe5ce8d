# mutewarden: the two set-up commands of the README, `make demo` and `make test`, and a few more.
# `make help` lists the public targets: each has a `## description` on its line, which is
# what `help` prints, so the list cannot drift from the targets.
#
# Needs Debian 12 (bookworm) with the Swift toolchain; installing packages needs root or sudo.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.PHONY: help demo test tsan lint format fuzz fuzz-build fuzz-smoke bench bench-compare bench-soak bench-engine bench-ops bench-journal bench-report bench-websocket bench-http bench-ingress bench-gws bench-socketio bench-jwt build deps bench-deps test-deps check-warnings check-hazards
# `make` alone runs the demo, as it always has; `help` is not the default.
.DEFAULT_GOAL := demo

# Debian packages: the C libraries behind the transports and the journal.
BUILD_PACKAGES := pkg-config libcurl4-openssl-dev libwebsockets-dev libsystemd-dev libjemalloc-dev
# Packages the test suite's real peers need:
# - systemd for systemd-journald, journalctl and systemd-analyze (Tests/SystemdTests), util-linux
#   and mount for the private mount namespaces the journald tests run in;
# - the WebSocket tests run a Python `websockets` server and libwebsockets-test-server;
# - the HTTP tests run a Python server and check HTTP/2 against nghttpd;
# - both make their TLS certificates with the openssl CLI;
# - the GWS peer (Tests/Providers/Genesys/PeerTests) is a Faye Bayeux server on thin, with faye-websocket for
#   the websocket connection type, driven with the curl CLI;
# - the Voicenter peer (Tests/Providers/Voicenter/PeerTests) is a python3 fake of the login, refresh and
#   MuteUnmuteCalls APIs, standard library only.
# - the socket.io tests (Tests/MutewardenSocketIOTests) run python-socketio on aiohttp: Debian's 5.x for
#   Engine.IO v4, and 4.6 for v3 in a venv the tests make from PyPI with python3-venv.
# - the callback-authentication tests (Tests/MutewardenCallbackAuthTests) serve signing keys with python3;
#   the Azure tests (Tests/MutewardenAzureTests) run a python3 fake of Entra ID's token endpoint, and check
#   ACS request signing against Microsoft's azure-communication-callautomation, in a venv from PyPI.
# - the Graph peer (Tests/Providers/Graph/PeerTests) is a python3 fake of Graph's calls API, token endpoint and
#   signing keys that signs the notifications it posts with python3-jwt on python3-cryptography.
# - the ACS peer tests (Tests/Providers/ACS/PeerTests) run a python3 fake of Call Automation that signs its
#   callbacks with RS256 (python3-jwt, python3-cryptography).
# - the report tests (Tests/MutewardenReportTests) open the HTML report in headless chromium, driven over
#   the DevTools protocol with python3-websockets, and validate the JSON report against
#   docs/report.schema.json with python3-jsonschema.
TEST_PACKAGES := systemd util-linux mount python3 python3-websockets libwebsockets-test-server openssl nghttp2-server \
	ruby ruby-faye ruby-faye-websocket thin curl python3-socketio python3-aiohttp python3-venv \
	python3-jwt python3-cryptography python3-prometheus-client chromium python3-jsonschema

# What the end-to-end benchmark needs besides the build libraries: taskset (util-linux) to pin
# the daemon and the generator to their own cores, python3 for the sweep, gnuplot for the plots,
# systemd-journal-remote to build a journal directory for `make bench-report`.
BENCH_PACKAGES := util-linux python3 gnuplot-nox systemd-journal-remote

DEMO_FOR ?= 20s

help: ## list the public targets
	@awk 'BEGIN { FS = ":[^#]*## " } /^[a-z][a-z0-9-]*:[^#]*## / { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

demo: deps ## install what is needed, build (release), run the built-in demo for 20 s (DEMO_FOR=2m: longer)
	swift build -c release --product mutewarden
	.build/release/mutewarden check-config --config config/demo.yaml
	.build/release/mutewarden run --config config/demo.yaml --for $(DEMO_FOR)

# One test at a time, so that what a failing test's peers and daemon printed is that test's
# alone; the suite passes side by side too (plain `swift test`), since its waits sleep as tasks
# and never hold a thread of the cooperative pool. Then the ThreadSanitizer run (make tsan).
# Tests make state directories, peers' logs and sockets under TMPDIR: one scratch directory per
# run, removed afterwards, so that runs do not pile thousands of them up in /tmp.
test: test-deps check-warnings check-hazards ## install what is needed and run the whole test suite, then `make tsan` and `make fuzz-smoke`
	@scratch=$$(mktemp -d /tmp/mutewarden-tests.XXXXXX); \
	TMPDIR=$$scratch swift test --no-parallel && status=0 || status=$$?; \
	rm -rf "$$scratch"; exit $$status
	$(MAKE) tsan
	$(MAKE) fuzz-smoke

# The layout .swift-format describes (CONTRIBUTING.md#style). swift-format ships with the Swift
# toolchain; `make format` rewrites what `make lint` would refuse. CI runs lint before the tests.
# Every package's Swift files: the root one, Benchmarks/, and the fuzz targets where they exist.
SWIFT_SOURCES := Sources Tests Benchmarks Package.swift $(wildcard Fuzz)

lint: ## check the Swift sources against .swift-format, as CI does
	swift format lint --strict --recursive --parallel $(SWIFT_SOURCES)

format: ## rewrite the Swift sources into the layout that `make lint` checks
	swift format format --in-place --recursive --parallel $(SWIFT_SOURCES)


# The tests whose code runs on threads of their own (libcurl's loop, the lws service thread,
# the engine thread, the Bayeux client between them, the socket.io session's timer) under ThreadSanitizer;
# any report fails.
# The instrumented build has its own scratch path, so it never replaces the one `swift test`
# uses: a full debug build with -sanitize=thread, several minutes on two cores the first time.
TSAN_TESTS := MutewardenHTTPTests|MutewardenWebSocketTests|MutewardenSocketIOTests|MutewardenBayeuxTests|MutewardenDaemonTests
tsan: test-deps ## the transport, Bayeux and daemon tests under ThreadSanitizer (part of `make test`)
	swift build --build-tests --sanitize=thread --scratch-path .build-tsan
	@scratch=$$(mktemp -d /tmp/mutewarden-tsan.XXXXXX); log=$$scratch.log; \
	TMPDIR=$$scratch swift test --skip-build --sanitize=thread --scratch-path .build-tsan --no-parallel \
	  --filter '^($(TSAN_TESTS))\.' 2>&1 | tee "$$log" && status=0 || status=$$?; \
	rm -rf "$$scratch"; \
	if grep -q "WARNING: ThreadSanitizer" "$$log"; then \
	  grep -c "WARNING: ThreadSanitizer" "$$log" | xargs echo "ThreadSanitizer reports (above):" >&2; rm -f "$$log"; exit 1; \
	fi; \
	rm -f "$$log"; exit $$status

# The sweep: 1,000 to 50,000 events/s with 10,000 concurrent calls, long-polling and websocket,
# the generator on CPU 0 and the daemon on CPU 1, then the floor (--reflex) up to 20,000, then
# Voicenter (socket.io) at 1,000 and 5,000; about nine minutes (bench/loadbench.py).
bench: bench-deps ## end-to-end load: GWS 1k to 50k events/s on both transports, Voicenter 1k and 5k; bench/results/
	swift build -c release --product mutewarden
	swift build -c release --product mutewarden-loadgen
	/usr/bin/python3 bench/loadbench.py sweep

# Two daemon builds at one rate, run alternately: `make bench-compare BASELINE=/path/to/mutewarden`
# (for example a release build of an older commit, made in a git worktree).
bench-compare: bench-deps ## A/B of this build against BASELINE=<daemon binary> at 5,000 events/s
	@test -n "$(BASELINE)" || { echo "usage: make bench-compare BASELINE=/path/to/old/mutewarden" >&2; exit 2; }
	swift build -c release --product mutewarden
	swift build -c release --product mutewarden-loadgen
	/usr/bin/python3 bench/loadbench.py compare --baseline "$(BASELINE)"

# 30 minutes at 2,000 events/s: RSS must stay flat after warm-up (bench/results/soak-rss.png).
bench-soak: bench-deps ## 30 minutes at 2,000 events/s: the daemon's memory over time
	swift build -c release --product mutewarden
	swift build -c release --product mutewarden-loadgen
	/usr/bin/python3 bench/loadbench.py soak

# The component benchmarks are in their own package (Benchmarks/), built in release mode there.
BENCH_BUILD := swift build -c release --package-path Benchmarks
BENCH_BIN := Benchmarks/.build/release

bench-engine: deps ## engine throughput and allocations per event (release build)
	$(BENCH_BUILD) --product mutewarden-bench
	@echo "== realistic mix: 25% of calls take a card"
	$(BENCH_BIN)/mutewarden-bench --calls 10000 --events 2000000 --rounds 5
	@echo "== stress mix: every call takes a card"
	$(BENCH_BIN)/mutewarden-bench --calls 10000 --events 1000000 --rounds 3 --capture-ratio 1

# Start-to-READY and reload times, as systemd sees them on the notify socket (release build).
bench-ops: deps ## start-to-READY and reload times (release build)
	swift build -c release --product mutewarden
	python3 bench/startup_reload.py .build/release/mutewarden config/demo.yaml 20
# Journal backend throughput against a private systemd-journald (needs root: mount namespaces).
bench-journal: test-deps ## journal backend throughput into a private journald (root)
	$(BENCH_BUILD) --product mutewarden-journal-bench
	@echo "== handler cost alone: sanitize and encode, no journal"
	$(BENCH_BIN)/mutewarden-journal-bench --sink null --records 200000 --rounds 3
	@echo "== the stderr handler alone: sanitize and format a line, no write"
	$(BENCH_BIN)/mutewarden-journal-bench --sink line --records 200000 --rounds 3
	@echo "== into systemd-journald"
	bench/journal.sh $(BENCH_BIN)/mutewarden-journal-bench --records 100000 --rounds 3

# `mutewarden report` over a month of a busy site's audit records, on one core (taskset -c 0): from a
# `journalctl -o json` export, and from a journal directory that systemd-journal-remote builds from
# the same records. The files go in Benchmarks/.build/report-month/ and are made once.
REPORT_BENCH_RECORDS ?= 1000000
REPORT_BENCH_DIR := Benchmarks/.build/report-month
bench-report: bench-deps ## mutewarden report over a million audit records, one core (release build)
	$(BENCH_BUILD) --product mutewarden-report-bench
	mkdir -p $(REPORT_BENCH_DIR)
	[ -s $(REPORT_BENCH_DIR)/month.json ] || $(BENCH_BIN)/mutewarden-report-bench generate --records $(REPORT_BENCH_RECORDS) \
		--json $(REPORT_BENCH_DIR)/month.json --export $(REPORT_BENCH_DIR)/month.export
	@echo "== from the export (--from)"
	taskset -c 0 $(BENCH_BIN)/mutewarden-report-bench read --from $(REPORT_BENCH_DIR)/month.json --rounds 3
	@if [ -x /lib/systemd/systemd-journal-remote ]; then \
		if [ ! -d $(REPORT_BENCH_DIR)/journal ]; then mkdir -p $(REPORT_BENCH_DIR)/journal && \
			/lib/systemd/systemd-journal-remote --output=$(REPORT_BENCH_DIR)/journal/month.journal $(REPORT_BENCH_DIR)/month.export; fi; \
		echo "== from the journal directory (sd-journal)"; \
		taskset -c 0 $(BENCH_BIN)/mutewarden-report-bench read --directory $(REPORT_BENCH_DIR)/journal --rounds 3; \
	else echo "systemd-journal-remote is not installed (BENCH_PACKAGES): the journal directory is not measured"; fi

# WebSocket client throughput from a local flooding server (release build).
bench-websocket: test-deps ## WebSocket client throughput from a local flooding server (release build)
	$(BENCH_BUILD) --product mutewarden-ws-bench
	$(BENCH_BIN)/mutewarden-ws-bench --messages 1000000 --size 1024 --rounds 3

# The client is pinned to CPU 0 and the C keep-alive server to CPU 1, so "requests per second on
# one core" means what it says; on a busy machine run it twice and keep the better figure.
HTTP_BENCH_REQUESTS ?= 100000
bench-http: deps ## HTTP client: Swift layer against plain C on libcurl, 1 and 64 in flight
	$(BENCH_BUILD) --product mutewarden-http-bench
	$(BENCH_BUILD) --product mutewarden-http-cbench
	@out=$$(mktemp); \
	taskset -c 1 $(BENCH_BIN)/mutewarden-http-cbench serve --seconds 600 >"$$out" & server=$$!; \
	trap 'kill $$server 2>/dev/null; rm -f "$$out"' EXIT; \
	for _ in $$(seq 100); do grep -q port "$$out" && break; sleep 0.05; done; \
	url="http://127.0.0.1:$$(awk '{print $$2}' "$$out")/"; \
	for inflight in 1 64; do \
	  taskset -c 0 $(BENCH_BIN)/mutewarden-http-cbench client --url "$$url" --requests $(HTTP_BENCH_REQUESTS) --in-flight $$inflight; \
	  taskset -c 0 $(BENCH_BIN)/mutewarden-http-bench --url "$$url" --requests $(HTTP_BENCH_REQUESTS) --in-flight $$inflight; \
	done

# The ingress (its service thread and the handler's tasks) pinned to CPU 1, the C keep-alive client
# to CPU 0: authenticated callbacks per second through the ingress on one core, for each way of
# authenticating (INGRESS_BENCH_MODES): a fixed bearer token, the RS256 JWT check, and the whole
# `acs` feed (JWT, CloudEvents parse, the feed's core, a counting sink).
INGRESS_BENCH_REQUESTS ?= 200000
INGRESS_BENCH_MODES ?= bearer jwt acs
bench-ingress: deps ## callback ingress: authenticated keep-alive POSTs per second (bearer, JWT, acs feed; release build)
	$(BENCH_BUILD) --product mutewarden-ingress-bench
	$(BENCH_BUILD) --product mutewarden-http-cbench
	@for mode in $(INGRESS_BENCH_MODES); do \
	  out=$$(mktemp); \
	  taskset -c 1 $(BENCH_BIN)/mutewarden-ingress-bench --seconds 600 --mode $$mode >"$$out" & server=$$!; \
	  for _ in $$(seq 400); do grep -q '^port' "$$out" && break; sleep 0.05; done; \
	  url="http://127.0.0.1:$$(awk '/^port/ {print $$2}' "$$out")/callbacks"; \
	  header="$$(sed -n 's/^header //p' "$$out")"; \
	  body="$$(sed -n 's/^body //p' "$$out")"; \
	  for inflight in 1 16; do \
	    taskset -c 0 $(BENCH_BIN)/mutewarden-http-cbench client --url "$$url" --requests $(INGRESS_BENCH_REQUESTS) \
	      --in-flight $$inflight --header "$$header" $${body:+--body-text "$$body"}; \
	  done; \
	  kill $$server; wait $$server || true; grep '^ingress' "$$out"; rm -f "$$out"; \
	done

# A recorded stream of GWS CometD replies, parsed and delivered by the Bayeux client, mapped and
# run through the engine; no network.
bench-gws: deps ## GWS events through the Bayeux client and mapping into the engine (release build)
	$(BENCH_BUILD) --product mutewarden-gws-bench
	$(BENCH_BIN)/mutewarden-gws-bench --events 300000

# Voicenter-shaped socket.io frames through the packet codec and the session state machine, both
# Engine.IO versions; no network.
bench-socketio: deps ## socket.io frames through the codec and the session state machine (release build)
	$(BENCH_BUILD) --product mutewarden-socketio-bench
	$(BENCH_BIN)/mutewarden-socketio-bench --events 300000 --version 3
	$(BENCH_BIN)/mutewarden-socketio-bench --events 300000 --version 4

# The JWT check of one callback with its keys cached (RS256), alone and with 2 tasks at once.
bench-jwt: deps ## callback JWT validation: µs per check, RS256, keys cached (release build)
	$(BENCH_BUILD) --product mutewarden-jwt-bench
	$(BENCH_BIN)/mutewarden-jwt-bench --validations 20000 --rounds 5
	$(BENCH_BIN)/mutewarden-jwt-bench --validations 20000 --rounds 5 --concurrency 2

build: deps ## build everything in release mode
	swift build -c release

# Calls apt-get only when a package is missing, so that it is quick on a machine already set up.
# Installs the packages a target needs, calling apt-get only when one is missing, so that it is
# quick on a machine already set up. The demo and the benchmarks need only the build libraries;
# the tests also need their peers.
define install
	@missing=""; \
	for package in $(1); do \
	  dpkg-query -W -f='$${Status}' "$$package" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  echo "installing:$$missing"; \
	  $$sudo apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

deps:
	$(call install,$(BUILD_PACKAGES))

bench-deps:
	$(call install,$(BUILD_PACKAGES) $(BENCH_PACKAGES))

test-deps:
	$(call install,$(BUILD_PACKAGES) $(TEST_PACKAGES))

# A release build must have no warnings in our own code (dependencies are not ours to fix).
check-warnings: ## fail on a warning of the release build in Sources/ (part of `make test`)
	@log=$$(mktemp); \
	swift build -c release 2>&1 | tee "$$log" | grep -E "error:|Build complete" || true; \
	if grep -E "^$(CURDIR)/Sources/.*warning:" "$$log"; then echo "the release build has warnings (above)" >&2; exit 1; fi; \
	grep -q "Build complete" "$$log" || { cat "$$log"; exit 1; }; \
	rm -f "$$log"

# APIs that crashed this project's test process and must not come back: tearing down
# FileHandle.readabilityHandler races libdispatch's epoll bookkeeping on Linux
# (swift-corelibs-libdispatch#949); read a child's output with ChildOutput (Tests/MutewardenTesting).
check-hazards: ## fail on APIs that crashed the test process before (part of `make test`)
	@if grep -rn "readabilityHandler" Sources Tests --include='*.swift' | grep -v "^Tests/MutewardenTesting/ChildOutput.swift:"; then \
		echo "readabilityHandler is banned (above): use ChildOutput" >&2; exit 1; fi

# libFuzzer targets for every parser platforms and operators feed (Fuzz/, docs/fuzzing.md), built
# with the fuzzer and AddressSanitizer. `fuzz` runs each for FUZZ_SECONDS; `fuzz-smoke` (run by
# `make test`) replays every input that ever crashed one, then runs each for 15 s.
FUZZ_SECONDS ?= 300
# One -sanitize= with both: swiftc (6.3) honours only the last of several, so `-sanitize=fuzzer
# -sanitize=address` built with AddressSanitizer and no coverage, and libFuzzer mutated blind.
FUZZ_BUILD := swift build -c release --package-path Fuzz -Xswiftc -sanitize=fuzzer,address

fuzz-build: deps ## build the fuzz targets (Fuzz/) with libFuzzer and AddressSanitizer
	$(FUZZ_BUILD)

fuzz: fuzz-build ## run every fuzz target for FUZZ_SECONDS (default 300) each
	Fuzz/run.sh $(FUZZ_SECONDS)

fuzz-smoke: fuzz-build ## replay every past fuzz crash, then fuzz each target for 15 s (part of `make test`)
	Fuzz/run.sh 15
