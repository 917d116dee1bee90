# hookgate: `make run` serves the shipped rules/, `make test` runs every test, `make bench`
# measures the pipeline, the end-to-end cost and hostile bodies. Each first installs what it
# needs, once, quietly.

SHELL := /bin/bash
CARGO ?= cargo
RULES ?= rules

.PHONY: run test bench fuzz deps test-deps client-deps
FUZZ_SECONDS ?= 60

# $(call need,COMMANDS,DEBIAN PACKAGES): when a command is missing, install the packages with
# apt-get as root (showing apt's output only if it fails), or say what to install.
define need
	@missing=""; for c in $(1); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing $(2) for:$$missing"; log=$$(mktemp); \
	    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(2); } >$$log 2>&1; then \
	      cat $$log >&2; exit 1; fi; rm -f $$log; \
	  else \
	    echo "missing:$$missing; install with: sudo apt-get install --no-install-recommends $(2)" >&2; exit 1; \
	  fi; \
	fi
endef

# pingora always builds zlib-ng, which needs cmake and a C compiler.
deps:
	$(call need,cmake cc,cmake gcc libc6-dev)

# The metrics tests lint with promtool and scrape with a real Prometheus server.
test-deps:
	$(call need,promtool prometheus,prometheus)

# The real Slack and Mattermost clients the migration tests drive, in project-local folders:
# slack_sdk and apprise in .venv, @slack/webhook in tests/clients/node_modules.
client-deps:
	$(call need,python3 node npm curl,python3 python3-venv nodejs npm curl)
	@.venv/bin/python -c "import slack_sdk" 2>/dev/null && [ -x .venv/bin/apprise ] || { \
	  echo "installing slack_sdk and apprise into .venv"; \
	  python3 -m venv .venv && .venv/bin/pip install --quiet --disable-pip-version-check "slack_sdk>=3.48,<4" "apprise>=1.9,<3"; }
	@[ -d tests/clients/node_modules/@slack/webhook ] || { \
	  echo "installing @slack/webhook into tests/clients/node_modules"; \
	  npm install --prefix tests/clients --silent --no-audit --no-fund --no-package-lock; }

run: deps
	$(CARGO) build --release --quiet
	./target/release/hookgate serve --rules $(RULES)

test: deps test-deps client-deps
	$(CARGO) test --quiet

# The pipeline benchmarks (criterion), the end-to-end comparison with nginx (wrk), then hostile
# bodies against plain text of the same size (fails when a shape costs more than 10x).
bench: deps
	$(call need,nginx wrk curl,nginx-light wrk curl)
	$(CARGO) bench --bench pipeline
	bash benches/e2e.sh
	$(CARGO) bench --bench hostile

# Each cargo-fuzz target for FUZZ_SECONDS on top of the checked-in seed corpus (new inputs go to a
# temporary directory, so the corpus stays as committed). cargo-fuzz passes flags only nightly
# accepts; RUSTC_BOOTSTRAP lets this machine's one stable toolchain take them. No sanitizer: the
# code is safe Rust, and a panic is what the fuzzers look for.
fuzz: deps
	@command -v cargo-fuzz >/dev/null 2>&1 || { echo "installing cargo-fuzz"; $(CARGO) install cargo-fuzz --locked --quiet; }
	@cd fuzz && for target in decode translate pipeline; do \
	  work=$$(mktemp -d); \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -s none -O $$target $$work corpus/$$target -- \
	    -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -print_final_stats=0 2>&1 | grep -E "Done|ERROR|panicked" ; \
	  status=$${PIPESTATUS[0]}; rm -rf $$work; [ $$status -eq 0 ] || exit $$status; \
	done
