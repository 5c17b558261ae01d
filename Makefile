# The two commands a newcomer types: `make demo` and `make test`. Everything goes through
# scripts/setup first, so a fresh Debian 12 machine needs nothing else.
.PHONY: all build setup test demo demo-fleet asan asan-test fuzz format clean

all: build

setup:
	@scripts/setup

build: setup
	@cmake --preset release >/dev/null
	@cmake --build --preset release

# The tests that run in the release build only (cmake/chokepoint.cmake,
# chokepoint_release_only_labels; keep the two in step): verdict and *-measure measure the lab's
# timing, stack layout and memory, which ASan changes; browser drives the page in Chromium;
# release-only names single tests that cannot run under ASan.
timing_labels := verdict|measure|browser|release-only

# `make test` builds everything and runs every test in the release build. TEST_SCOPE=timing (CI,
# .ci/run) builds and runs only the tests above, since CI runs every other test once, under ASan
# (`make asan-test`): each test runs once there, in the strongest build it can.
TEST_SCOPE ?= all
ifeq ($(TEST_SCOPE),timing)
test_build := --target chokepoint_timing_tests
test_select := --label-regex '$(timing_labels)'
else ifneq ($(TEST_SCOPE),all)
$(error TEST_SCOPE is all (the default: every test) or timing (the release-only tests, as CI runs them))
endif

# A failed test is run again, up to three runs in all (--repeat until-pass:3): the verdict and
# measurement tests drive real programs on shared two-core VMs, where another tenant's burst can
# tip a measurement; a test whose code is wrong fails all three runs (each run is in
# build/Testing/Temporary/LastTest.log).
test: setup
	@cmake --preset release >/dev/null
	@cmake --build --preset release $(test_build)
	@ctest --preset release -j2 --repeat until-pass:3 $(test_select)

demo: build
	@scripts/demo

# Two lab instances, an agent each, a real Prometheus and `chokepoint fleet` (docs/agent.md).
demo-fleet: build
	@bench/agent/fleet_demo.sh build

asan: setup
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan

# What ASan runs (docs/testing.md): every test but the release-only ones above (timing_labels),
# two at a time as in `make test` (the tests' SERIAL and LOCK: cmake/chokepoint.cmake). The code
# the release-only tests drive (diagnose, profile, the rules, the lab, report) runs under ASan in
# the CLI, integration and reliability tests. The two SIGKILL soaks run short under ASan (20 kills
# where release does 200, 20 runs where it does 50): every kind of interrupted run and every replay
# path is reached; only the count of random moments is smaller.
asan-test: asan
	@ctest --preset asan -j2 --repeat until-pass:3 --label-exclude '$(timing_labels)'

fuzz: setup
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz

# Tracked files and new ones not yet added (a new file is the one most likely unformatted).
format:
	@git ls-files --cached --others --exclude-standard '*.cpp' '*.h' | xargs clang-format -i

clean:
	rm -rf build build-asan build-fuzz
