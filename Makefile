# The two commands of the README:
#   make run    install what is missing, build, serve examples/notes behind nginx on :8080 (sessions in SQLite)
#   make test   install what is missing, build, run every test (CI runs this)
#   make bench  install what is missing, build release, run the benchmark suite (bench/run)

SWIFT ?= swift

.PHONY: deps build run test bench clean

deps:
	@scripts/install-deps

build: deps
	$(SWIFT) build

run: build
	scripts/run-example notes

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

bench:
	bench/run

clean:
	rm -rf .build .run
