# The two commands of the README:
#   make run    install what is missing, build, serve examples/notes behind nginx on :8080 (sessions in SQLite)
#   make test   install what is missing, build, run the unit tests, then the end-to-end tests, build the API docs,
#               the session-lab suites again with async handlers, the OpenTelemetry example against a real OTLP
#               receiver, all tests again under AddressSanitizer, then each fuzz target for a minute (CI runs this)
#   make fuzz   the libFuzzer targets in Fuzz/, FUZZ_SECONDS each (default 60)
#   make docs   the API documentation of every library (DocC), failing on any warning
#   make bench  install what is missing, build release, run the benchmark suite (bench/run)

SWIFT ?= swift

.PHONY: deps build run test test-e2e test-async-lab test-otel test-asan fuzz docs bench clean

deps:
	@scripts/install-deps

build: deps
	$(SWIFT) build

run: build
	scripts/run-example notes

# Each phase says when it starts, for the README's time budget.
PHASE = @echo "== make test: $(1) at $$(date -u +%T)"

test: deps
	$(call PHASE,build)
	$(SWIFT) build --build-tests
	$(call PHASE,unit tests)
	$(SWIFT) test --skip-build --skip '^GimletEndToEndTests\.'
	$(call PHASE,end-to-end tests)
	$(MAKE) --no-print-directory test-e2e
	$(call PHASE,docs)
	$(MAKE) --no-print-directory docs
	$(call PHASE,async lab)
	$(MAKE) --no-print-directory test-async-lab
	$(call PHASE,OpenTelemetry export)
	$(MAKE) --no-print-directory test-otel
	$(call PHASE,AddressSanitizer)
	$(MAKE) --no-print-directory test-asan
	$(call PHASE,fuzz)
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=60
	$(call PHASE,done)

# The end-to-end suites (real nginx, Apache, Redis, PostgreSQL, spawn-fcgi and
# the apps as processes), in a phase of their own: they time real servers,
# and two cores shared with the unit suites made them wait on each other.
test-e2e:
	$(SWIFT) test --skip-build --filter '^GimletEndToEndTests\.' --skip '$(OTEL_SUITE)'

# examples/otel, a package of its own (swift-otel's build stays out of
# Gimlet's), exporting its spans to a real OTLP receiver (Arize Phoenix, from
# PyPI, in .build-phoenix): built and installed here, then its suite.
OTEL_SUITE = ^GimletEndToEndTests\.OTelExport
# The README's package: `swift build` and `swift test` of an app of its own,
# without the sanitizer, so the AddressSanitizer pass would only build and run
# the same uninstrumented code again (two builds' CPU beside the other suites).
UNINSTRUMENTED_SUITE = ^GimletEndToEndTests\.OwnPackage
test-otel: deps
	$(SWIFT) build --package-path examples/otel
	scripts/install-otel-receiver
	$(SWIFT) test --skip-build --filter '$(OTEL_SUITE)'

# The suites that drive session-lab, in-process and behind nginx and Apache,
# again with every lab handler and the lab's own middleware async: an
# all-async app must behave exactly as the synchronous one.
LAB_SUITES = SessionBehaviour|MinimalIO|HostileCookies|SessionLabBehindNginx|BackendsBehindNginx|BehindApache|LargeCookies|WorkerProcesses|DeployRecipes
test-async-lab:
	GIMLET_LAB_STYLE=async $(SWIFT) test --skip-build --filter '$(LAB_SUITES)'

# Every test again (unit, then end to end), built with AddressSanitizer in .build-asan, the end-to-end
# tests starting the ASan builds of the apps too. Each process writes its
# reports to $(ASAN_LOGS)/report.EXECUTABLE.PID; any report fails the run,
# even one from a process whose failure no test noticed. Reports are written
# unsymbolized (at once, whole, even from a process stopped right after) and
# symbolized afterwards by scripts/asan-symbolize. (LeakSanitizer is off:
# leaks are not checked by this pass yet.)
ASAN_LOGS = $(CURDIR)/.build-asan/reports
ASAN_TEST = GIMLET_BIN_DIR=$(CURDIR)/.build-asan/debug \
	ASAN_OPTIONS=detect_leaks=0:symbolize=0:log_exe_name=1:log_path=$(ASAN_LOGS)/report \
	$(SWIFT) test --skip-build --scratch-path .build-asan
test-asan: deps
	$(SWIFT) build --build-tests -Xswiftc -sanitize=address --scratch-path .build-asan
	rm -rf $(ASAN_LOGS) && mkdir -p $(ASAN_LOGS)
	$(ASAN_TEST) --skip '^GimletEndToEndTests\.'
	$(ASAN_TEST) --filter '^GimletEndToEndTests\.' --skip '$(OTEL_SUITE)' --skip '$(UNINSTRUMENTED_SUITE)'
	@if [ -n "$$(ls -A $(ASAN_LOGS))" ]; then scripts/asan-symbolize $(ASAN_LOGS)/*; echo "AddressSanitizer reported the errors above"; exit 1; fi
	@echo "AddressSanitizer: no reports"

FUZZ_SECONDS ?= 60
fuzz: deps
	SWIFT=$(SWIFT) scripts/fuzz $(FUZZ_SECONDS)

docs: deps
	SWIFT=$(SWIFT) scripts/docs

bench:
	bench/run

clean:
	rm -rf .build .build-asan .build-fuzz .build-phoenix examples/otel/.build .run
