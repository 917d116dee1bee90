# hookgate: `make run` serves the shipped rules/, `make test` runs every test, `make bench`
# measures the pipeline. Each installs what it needs first.

CARGO ?= cargo
RULES ?= rules

.PHONY: run test bench deps

# pingora always builds zlib-ng, which needs cmake (and a C compiler).
deps:
	@command -v cmake >/dev/null 2>&1 && command -v cc >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing cmake and a C compiler (apt-get)"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake gcc >/dev/null; \
	  else \
	    echo "hookgate needs cmake and a C compiler to build pingora; install them with:" >&2; \
	    echo "  sudo apt-get install cmake gcc" >&2; exit 1; \
	  fi; }

run: deps
	$(CARGO) build --release --quiet
	./target/release/hookgate serve --rules $(RULES)

test: deps
	$(CARGO) test --quiet

bench: deps
	$(CARGO) bench --bench pipeline
