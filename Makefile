# Thin wrappers around ./dev, which holds the real commands.
.PHONY: run test lint bench setup
run: ; ./dev run
test: ; ./dev test
lint: ; ./dev lint
bench: ; ./dev bench
setup: ; ./dev setup
