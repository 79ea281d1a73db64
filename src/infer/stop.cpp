// The stop-string matcher of streamed generation.
#include "goose/infer/stop.h"

#include <algorithm>

#include "goose/core/error.h"

namespace goose::infer {

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
    for (size_t i = 0; i < stops_.size(); ++i)
        if (stops_[i].empty()) fail("stop string {} is empty (a stop string needs >= 1 byte)", i + 1);
}

std::string StopMatcher::push(std::string_view text) {
    if (stopped_) return {};
    pending_.append(text);
    // The stop string that completes first (smallest end; ties: the longer one).
    size_t best_end = std::string::npos, best_pos = 0, best = 0;
    for (size_t i = 0; i < stops_.size(); ++i) {
        const size_t pos = pending_.find(stops_[i]);
        if (pos == std::string::npos) continue;
        const size_t end = pos + stops_[i].size();
        if (end < best_end || (end == best_end && pos < best_pos)) {
            best_end = end;
            best_pos = pos;
            best = i;
        }
    }
    if (best_end != std::string::npos) {
        stopped_ = true;
        matched_ = stops_[best];
        std::string out = pending_.substr(0, best_pos);
        pending_.clear();
        return out;
    }
    // Hold back the longest tail that is a proper prefix of some stop string.
    size_t hold = 0;
    for (const auto& s : stops_) {
        const size_t most = std::min(s.size() - 1, pending_.size());
        for (size_t n = most; n > hold; --n)
            if (std::string_view(pending_).substr(pending_.size() - n) ==
                std::string_view(s).substr(0, n)) {
                hold = n;
                break;
            }
    }
    std::string out = pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
    return out;
}

std::string StopMatcher::flush() {
    std::string out;
    out.swap(pending_);
    return out;
}

}  // namespace goose::infer
