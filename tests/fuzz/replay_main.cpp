// Replays a fuzz corpus through a libFuzzer entry point, for builds without libFuzzer (g++).
// Usage: NAME DIR_OR_FILE... ; every regular file is one input. A missing corpus dir is an error,
// so a typo cannot turn the test into one that checks nothing.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

static void run_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

int main(int argc, char** argv) {
  int inputs = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path arg(argv[i]);
    if (std::filesystem::is_directory(arg)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(arg)) {
        if (entry.is_regular_file()) {
          run_file(entry.path());
          ++inputs;
        }
      }
    } else if (std::filesystem::is_regular_file(arg)) {
      run_file(arg);
      ++inputs;
    } else {
      std::fprintf(stderr, "error: no corpus at %s\n", argv[i]);
      return 1;
    }
  }
  if (inputs == 0) {
    std::fprintf(stderr, "error: the corpus is empty\n");
    return 1;
  }
  std::printf("replayed %d inputs\n", inputs);
  return 0;
}
