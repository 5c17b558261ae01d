# The two commands a newcomer types: `make demo` and `make test`. Everything goes through
# scripts/setup first, so a fresh Debian 12 machine needs nothing else.
.PHONY: all build setup test demo asan asan-test fuzz format clean

all: build

setup:
	@scripts/setup

build: setup
	@cmake --preset release >/dev/null
	@cmake --build --preset release

test: build
	@ctest --preset release -j2

demo: build
	@scripts/demo

asan: setup
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan

asan-test: asan
	@ctest --preset asan -j2

fuzz: setup
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz

format:
	@git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	rm -rf build build-asan build-fuzz
