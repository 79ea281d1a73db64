// Stop strings for streamed text: holds back any tail that may be the start of a stop string, so
// that nothing of a stop string is ever emitted, and cuts the text where the first one completes.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace goose::infer {

class StopMatcher {
public:
    // goose::Error for an empty stop string. No stops: push() passes everything through.
    explicit StopMatcher(std::vector<std::string> stops = {});

    // Appends text; returns what can be emitted now. When a stop string completes, returns the
    // text before it, stopped() turns true and later pushes return "". Among stop strings the
    // first to complete wins (ties: the longer one), so the result does not depend on how the
    // text is split into pushes. Emitted text ends on a character boundary when the input and
    // the stop strings are valid UTF-8.
    std::string push(std::string_view text);
    // The held-back text (the end of the output came without a stop): "" once stopped.
    std::string flush();

    bool stopped() const { return stopped_; }
    const std::string& matched() const { return matched_; }  // the stop string found, or ""
    const std::vector<std::string>& stops() const { return stops_; }
    size_t held() const { return pending_.size(); }  // bytes held back now

private:
    std::vector<std::string> stops_;
    std::string pending_, matched_;
    bool stopped_ = false;
};

}  // namespace goose::infer
