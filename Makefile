# hookgate: `make run` serves the shipped rules/, `make test` runs every test, `make lint` checks
# formatting, clippy, import circles and the manual's links, `make test-deb` installs the package
# into this machine and tests it (CI does), `make bench` measures. Each first installs what it
# needs, once, quietly. docs/developing.md says more.

SHELL := /bin/bash
CARGO ?= cargo
RULES ?= rules

.PHONY: run test test-deb lint bench fuzz fuzz-hostile fuzz-tool deps test-deps client-deps deb
FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 4096
FUZZ_TARGETS ?= decode translate pipeline answer rules webapi
HOSTILE_SECONDS ?= 60
HOSTILE_MAX_LEN ?= 300000
FUZZ_TIMEOUT ?= 2

# $(call need,COMMANDS,DEBIAN PACKAGES): when a command (or a file named by its path) is missing,
# install the packages with apt-get as root (showing apt's output only if it fails), or say what
# to install.
define need
	@missing=""; for c in $(1); do command -v $$c >/dev/null 2>&1 || [ -e $$c ] || missing="$$missing $$c"; done; \
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

# The metrics tests lint with promtool and scrape with a real Prometheus server; the tests of
# several instances start real redis-server and nats-server processes on loopback; the Web API
# tests run Debian's Alertmanager in Slack-app mode.
test-deps:
	$(call need,promtool prometheus,prometheus)
	$(call need,prometheus-alertmanager,prometheus-alertmanager)
	$(call need,redis-server redis-cli nats-server,redis-server redis-tools nats-server)

# The real Slack and Mattermost clients the migration tests drive, and the Synapse homeserver
# the Matrix tests start, in project-local folders: slack_sdk, apprise and matrix-synapse in
# .venv, @slack/webhook and @slack/web-api in tests/clients/node_modules.
client-deps:
	$(call need,python3 node npm curl,python3 python3-venv nodejs npm curl)
	@.venv/bin/python -c "import slack_sdk" 2>/dev/null && [ -x .venv/bin/apprise ] || { \
	  echo "installing slack_sdk and apprise into .venv"; \
	  python3 -m venv .venv && .venv/bin/pip install --quiet --disable-pip-version-check "slack_sdk>=3.48,<4" "apprise>=1.9,<3"; }
	@.venv/bin/python -c "import synapse" 2>/dev/null || { \
	  echo "installing matrix-synapse into .venv"; \
	  .venv/bin/pip install --quiet --disable-pip-version-check "matrix-synapse>=1.120,<2"; }
	@[ -d tests/clients/node_modules/@slack/webhook ] && [ -d tests/clients/node_modules/@slack/web-api ] || { \
	  echo "installing @slack/webhook and @slack/web-api into tests/clients/node_modules"; \
	  npm install --prefix tests/clients --silent --no-audit --no-fund --no-package-lock; }

# The dev profile, the build the tests use: on a fresh machine it takes 144 s on two cores
# against 245 s for the release profile (fat LTO, one codegen unit), and after `make test` it is
# already built. Benchmarks and the package keep the release profile.
run: deps
	$(CARGO) build --quiet
	./target/debug/hookgate serve --rules $(RULES)

# Every test but the package's, which changes the machine: nothing outside the checkout changes.
test: deps test-deps client-deps
	$(CARGO) test --quiet

# Builds the package, installs it into this machine with dpkg as root (tests/it/deb.rs), checks
# it and purges it. Anyone but root gets a printed reason.
test-deb: deps deb
	$(CARGO) test --quiet --test it deb:: -- --ignored

# What a change must pass besides the tests: rustfmt, clippy with warnings as errors, no import
# circle between modules, and no dead link or stale command in the README and docs/.
lint: deps
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --quiet -- -D warnings
	$(CARGO) test --quiet --test it -- imports:: docs::

# A Debian package made by cargo-deb (installed into ~/.cargo/bin when missing):
# target/debian/hookgate_VERSION-1_ARCH.deb with the binary, the systemd unit
# (packaging/debian/), the shipped rules as conffiles under /etc/hookgate, the README and docs/.
deb: deps
	$(call need,dpkg-shlibdeps,dpkg-dev)
	@command -v cargo-deb >/dev/null 2>&1 || { \
	  echo "installing cargo-deb"; $(CARGO) install cargo-deb --locked --quiet; }
	$(CARGO) deb --quiet

# The pipeline benchmarks (criterion), the end-to-end comparison with nginx (wrk), hostile
# bodies against plain text of the same size (fails when a shape costs more than 10x), then rule
# sets of up to 100,000 hooks (check, start, reload, and requests during reloads), then the spool
# (durably accepted messages per second and commits per second, next to direct delivery), then
# what sharing rate limits through Redis adds to each request, then the NATS engine (one node and
# a three-node cluster) next to the embedded spool.
bench: deps
	$(call need,nginx wrk curl /usr/lib/nginx/modules/ngx_http_js_module.so,nginx-light wrk curl libnginx-mod-http-js)
	$(call need,redis-server nats-server,redis-server nats-server)
	$(CARGO) bench --bench pipeline
	bash benches/e2e.sh
	$(CARGO) bench --bench hostile
	bash benches/rules_scale.sh
	bash benches/spool.sh
	bash benches/shared_ratelimit.sh
	bash benches/nats.sh

# Every cargo-fuzz target for FUZZ_SECONDS on top of the checked-in seed corpus, with inputs of
# at most FUZZ_MAX_LEN bytes: small inputs keep the translator, the pipeline, the backend answer
# reader and the rules loader at hundreds of thousands of runs a second, so each gets millions
# in CI's time. Prints each target's runs. New inputs go to a temporary directory, so the corpus
# stays as committed. One that takes longer than FUZZ_TIMEOUT seconds fails the run as a crash
# does. cargo-fuzz passes flags only nightly accepts; RUSTC_BOOTSTRAP lets this machine's one
# stable toolchain take them. No sanitizer: the code is safe Rust, and a panic or a timeout is
# what the fuzzers look for.
fuzz: deps fuzz-tool
	$(call fuzz_run,$(FUZZ_TARGETS),$(FUZZ_SECONDS),$(FUZZ_MAX_LEN),true)

# The hostile-size job: the targets that read request bodies, from large seeds made by
# fuzz/large_seeds.py up to max_body_bytes' default, so a body that makes the work grow faster
# than its size is a finding (a timeout).
fuzz-hostile: deps fuzz-tool
	$(call fuzz_run,decode translate pipeline,$(HOSTILE_SECONDS),$(HOSTILE_MAX_LEN),python3 large_seeds.py $$target $$work $(HOSTILE_MAX_LEN))

fuzz-tool:
	@command -v cargo-fuzz >/dev/null 2>&1 || { echo "installing cargo-fuzz"; $(CARGO) install cargo-fuzz --locked --quiet; }

# $(call fuzz_run,TARGETS,SECONDS,MAX_LEN,SEEDS): runs each target with SEEDS (a command that may
# write more seeds into $$work) and the corpus; one line of runs per target, the log on failure.
# translate gets two and a half times as long: it translates each input six ways and parses it as
# blocks, so it makes about a sixth as many runs a second as the pipeline.
define fuzz_run
	@cd fuzz && for target in $(1); do \
	  work=$$(mktemp -d); log=$$(mktemp); secs=$(2); \
	  if [ $$target = translate ]; then secs=$$(( $(2) * 5 / 2 )); fi; \
	  $(4) || exit 1; \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -s none -O $$target $$work corpus/$$target -- \
	    -max_total_time=$$secs -max_len=$(3) -timeout=$(FUZZ_TIMEOUT) \
	    -rss_limit_mb=2048 -print_final_stats=0 >$$log 2>&1; \
	  status=$$?; \
	  sed -nE "s/^Done ([0-9]+) runs in ([0-9]+) second.*/fuzz $$target: \1 runs in \2 s (inputs up to $(3) bytes)/p" $$log; \
	  if [ $$status -ne 0 ]; then tail -n 60 $$log; fi; \
	  rm -rf $$work $$log; [ $$status -eq 0 ] || exit $$status; \
	done
endef
