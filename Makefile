# The two commands a newcomer types: `make demo` and `make test`. Everything goes through
# scripts/setup first, so a fresh Debian 12 machine needs nothing else.
.PHONY: all build setup test demo demo-fleet asan asan-test fuzz format clean

all: build

setup:
	@scripts/setup

build: setup
	@cmake --preset release >/dev/null
	@cmake --build --preset release

# A failed test is run again, up to three runs in all (--repeat until-pass:3): the verdict and
# measurement tests drive real programs on shared two-core VMs, where another tenant's burst can
# tip a measurement; a test whose code is wrong fails all three runs (each run is in
# build/Testing/Temporary/LastTest.log).
test: build
	@ctest --preset release -j2 --repeat until-pass:3

demo: build
	@scripts/demo

# Two lab instances, an agent each, a real Prometheus and `chokepoint fleet` (docs/agent.md).
demo-fleet: build
	@bench/agent/fleet_demo.sh build

asan: setup
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan

# What ASan runs (docs/testing.md): its value is in code paths, not durations.
# - The verdict tests and the profile/off-CPU lab measurements (labels verdict, *-measure) measure
#   the lab's real behaviour under load; ASan changes its timing, its stack layout and its memory
#   (the allocator's quarantine grows anonymous memory like a leak), so they run in the release
#   build only (cmake/chokepoint.cmake does not even build their test binaries under ASan). The
#   code they drive (diagnose, profile, the rules, the lab) runs under ASan in the CLI,
#   integration and reliability tests.
# - The two SIGKILL soaks run short under ASan (20 kills where release does 200, 20 runs where it
#   does 50): every kind of interrupted run and every replay path is reached; only the count of
#   random moments is smaller.
# - The four browser tests (`*_browser_test`, Chromium) run in the release build only: the C++
#   they drive is `chokepoint report`, which runs under ASan in the recording, load, injection and
#   page tests; what they add is the page in a browser (JavaScript), which ASan does not see. They
#   were 108 s of the ASan phase's serial time (docs/testing.md).
# - Two slow end-to-end tests whose C++ paths other ASan tests reach (docs/testing.md names each
#   path and the tests that reach it): KneeLab.FindsThePoolCapacityAndWhatSaturatesAboveIt (14 s,
#   SERIAL) and DiagnoseProbes.RecordKeepsWhatARedisProbeReadAndReplayShowsIt (18 s).
# - Everything else, diagnose and profile on real targets included, runs under ASan too, two at a
#   time as in `make test` (the tests' SERIAL and LOCK: cmake/chokepoint.cmake).
asan_release_only_tests := _browser_test$$|^KneeLab\.FindsThePoolCapacityAndWhatSaturatesAboveIt$$|^DiagnoseProbes\.RecordKeepsWhatARedisProbeReadAndReplayShowsIt$$
asan-test: asan
	@ctest --preset asan -j2 --repeat until-pass:3 --label-exclude 'verdict|measure' \
	  --exclude-regex '$(asan_release_only_tests)'

fuzz: setup
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz

format:
	@git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	rm -rf build build-asan build-fuzz
