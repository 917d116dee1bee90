# hookgate: `make run` serves the shipped rules/, `make test` runs every test, `make bench`
# measures the pipeline. Each first installs what it needs, once, quietly.

CARGO ?= cargo
RULES ?= rules

.PHONY: run test bench deps test-deps

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

run: deps
	$(CARGO) build --release --quiet
	./target/release/hookgate serve --rules $(RULES)

test: deps test-deps
	$(CARGO) test --quiet

bench: deps
	$(CARGO) bench --bench pipeline
