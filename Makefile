# The two commands of the README:
#   make run    install what is missing, build, serve examples/hello behind nginx on :8080
#   make test   install what is missing, build, run every test (CI runs this)

SWIFT ?= swift

.PHONY: deps build run test clean

deps:
	@scripts/install-deps

build: deps
	$(SWIFT) build

run: build
	scripts/run-example hello

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

clean:
	rm -rf .build .run
