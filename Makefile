# Thin wrappers around ./dev, which holds the real commands.
.PHONY: run test lint bench setup
run: ; ./dev run
test: ; ./dev test
lint: ; ./dev lint
bench: ; ./dev bench $(BENCH_ARGS)  # e.g. make bench BENCH_ARGS=--package
setup: ; ./dev setup
