#include "fallback_router.h"

#include <algorithm>

namespace ferry::client::internal {

std::optional<Path> FallbackRouter::Admit(uint64_t token, const std::string& key,
                                          Path wanted) {
  if (key.empty()) return wanted;
  KeyState& state = keys_[key];
  if (state.in_flight == 0 || (state.waiting.empty() && state.path == wanted)) {
    state.path = wanted;
    ++state.in_flight;
    return wanted;
  }
  state.waiting.push_back(token);
  ++waiting_;
  return std::nullopt;
}

FallbackRouter::Released FallbackRouter::Finish(const std::string& key,
                                                std::optional<uint64_t> resend,
                                                Path wanted) {
  Released released{.path = wanted, .tokens = {}};
  if (key.empty()) {
    if (resend) released.tokens.push_back(*resend);
    return released;
  }
  auto it = keys_.find(key);
  if (it == keys_.end()) return released;  // not admitted: nothing to order
  KeyState& state = it->second;
  --state.in_flight;
  if (resend) {
    // In token order: an earlier message of the key may be resent after a
    // later one failed too.
    state.waiting.insert(
        std::lower_bound(state.waiting.begin(), state.waiting.end(), *resend), *resend);
    ++waiting_;
  }
  if (state.in_flight > 0) return released;
  if (state.waiting.empty()) {
    keys_.erase(it);
    return released;
  }
  released.tokens.assign(state.waiting.begin(), state.waiting.end());
  waiting_ -= state.waiting.size();
  state.waiting.clear();
  state.path = wanted;
  state.in_flight = static_cast<int>(released.tokens.size());
  return released;
}

}  // namespace ferry::client::internal
