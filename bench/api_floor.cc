// api_floor: bench/api_floor.h on its own, for `valgrind --tool=callgrind`
// (instructions per message of each form) or a quick look; publish_bench
// prints the same beside the direct producer of its run.
#include "bench/api_floor.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdint>

int main(int argc, char** argv) {
  CLI::App app{"CPU per message of what the per-message Publish API forces"};
  int64_t messages = 200000;
  int batch = 500;
  app.add_option("--messages", messages, "Messages per form")->capture_default_str();
  app.add_option("--batch", batch, "Completions handed to the sender at a time")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  const ferry::bench::FloorResult floor = ferry::bench::MeasureApiFloor(messages, batch);
  fmt::print("CPU µs per message: result alone {:.3f}, future {:.3f}, callback {:.3f}\n",
             floor.result_us, floor.future_us, floor.callback_us);
  return 0;
}
