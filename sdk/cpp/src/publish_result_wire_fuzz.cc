// libFuzzer target (scripts/fuzz): a PublishResponse comes from a node the
// SDK does not control, so any bytes, in any cut into pieces, must either be
// refused whatever the cut or read to the same results whatever the cut.
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "common/fuzz_pieces.h"
#include "publish_result_wire.h"

using ferry::client::internal::ResultView;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const ferry::fuzz::Pieces input = ferry::fuzz::CutInput(data, size);

  std::deque<std::string> whole_spilled;
  std::vector<ResultView> whole;
  const bool read =
      ferry::client::internal::ReadResults({&input.whole, 1}, &whole_spilled, &whole);
  std::deque<std::string> cut_spilled;
  std::vector<ResultView> cut;
  const bool read_cut =
      ferry::client::internal::ReadResults(input.cut, &cut_spilled, &cut);
  if (read != read_cut) std::abort();
  if (!read) return 0;
  // In one piece nothing is copied: every field is a view of the input.
  if (!whole_spilled.empty() || whole != cut) std::abort();
  return 0;
}
