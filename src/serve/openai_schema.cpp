// OpenAI request parsing and validation, the chat template, and the response bodies.
#include "serve/openai_schema.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <random>

#include <fmt/format.h>

#include "goose/core/error.h"
#include "text/utf8.h"

namespace goose::serve {

using nlohmann::json;

namespace {

const std::vector<std::string> kCompletionFields = {
    "model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "stop", "seed", "stream",
    "stream_options", "n", "presence_penalty", "frequency_penalty", "user", "ignore_eos"};
const std::vector<std::string> kChatFields = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k",
    "stop", "seed", "stream", "stream_options", "n", "presence_penalty", "frequency_penalty",
    "user", "ignore_eos"};
const std::vector<std::string> kRoles = {"system", "developer", "user", "assistant"};

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
}

std::string type_of(const json& v) {
    if (v.is_number_integer()) return "an integer";
    if (v.is_number()) return "a number";
    if (v.is_string()) return "a string";
    if (v.is_boolean()) return "a boolean";
    if (v.is_array()) return "an array";
    if (v.is_object()) return "an object";
    return "null";
}

// A JSON value quoted for a message (short, valid UTF-8).
std::string shown(const json& v) {
    std::string s = dump(v);
    if (s.size() > 60) s = s.substr(0, 57) + "...";
    return s;
}

int64_t get_int(const json& v, const std::string& name, int64_t lo, int64_t hi) {
    if (!v.is_number_integer())
        bad_request(name, fmt::format("'{}' must be an integer, got {} ({})", name, type_of(v),
                                      shown(v)));
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
        bad_request(name, fmt::format("'{}' must be in [{}, {}], got {}", name, lo, hi, shown(v)));
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi)
        bad_request(name, fmt::format("'{}' must be in [{}, {}], got {}", name, lo, hi, x));
    return x;
}

double get_number(const json& v, const std::string& name, double lo, double hi,
                  bool lo_open = false) {
    if (!v.is_number())
        bad_request(name, fmt::format("'{}' must be a number, got {} ({})", name, type_of(v),
                                      shown(v)));
    const double x = v.get<double>();
    if (!std::isfinite(x) || x < lo || x > hi || (lo_open && x == lo))
        bad_request(name, fmt::format("'{}' must be a finite number in {}{}, {}], got {}", name,
                                      lo_open ? "(" : "[", lo, hi, shown(v)));
    return x;
}

bool get_bool(const json& v, const std::string& name) {
    if (!v.is_boolean())
        bad_request(name, fmt::format("'{}' must be true or false, got {} ({})", name, type_of(v),
                                      shown(v)));
    return v.get<bool>();
}

const std::string& get_string(const json& v, const std::string& name) {
    if (!v.is_string())
        bad_request(name, fmt::format("'{}' must be a string, got {} ({})", name, type_of(v),
                                      shown(v)));
    return v.get_ref<const std::string&>();
}

void check_known(const json& obj, const std::vector<std::string>& known,
                 const std::string& where) {
    for (const auto& [key, value] : obj.items())
        if (std::find(known.begin(), known.end(), key) == known.end()) {
            const std::string name = where.empty() ? key : where + "." + key;
            bad_request(name, fmt::format("unknown field '{}' (known fields: {})", name,
                                          join(known)),
                        "unknown_field");
        }
}

std::vector<int64_t> get_ids(const json& arr, const std::string& name) {
    std::vector<int64_t> ids;
    ids.reserve(arr.size());
    for (size_t i = 0; i < arr.size(); ++i) {
        const json& v = arr[i];
        if (!v.is_number_integer())
            bad_request(name, fmt::format("'{}[{}]' must be a token id (an integer), got {} ({})",
                                          name, i, type_of(v), shown(v)));
        ids.push_back(v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX
                          ? INT64_MAX
                          : v.get<int64_t>());
    }
    return ids;
}

void parse_prompt(const json& p, CompletionRequest& r) {
    if (p.is_string()) {
        r.prompt = p.get<std::string>();
    } else if (p.is_array() && !p.empty() && p[0].is_number()) {
        r.prompt_ids = get_ids(p, "prompt");
        r.prompt_is_ids = true;
    } else if (p.is_array() && p.size() == 1 && (p[0].is_string() || p[0].is_array())) {
        if (p[0].is_string()) {
            r.prompt = p[0].get<std::string>();
        } else {
            r.prompt_ids = get_ids(p[0], "prompt[0]");
            r.prompt_is_ids = true;
        }
    } else if (p.is_array() && p.size() > 1 && (p[0].is_string() || p[0].is_array())) {
        bad_request("prompt", fmt::format("'prompt' holds {} prompts; this server takes one per "
                                          "request (send them as separate requests)",
                                          p.size()));
    } else {
        bad_request("prompt", fmt::format("'prompt' must be a string, an array of token ids, or "
                                          "an array with one of those; got {} ({})",
                                          type_of(p), shown(p)));
    }
    if (r.prompt_is_ids ? r.prompt_ids.empty() : r.prompt.empty())
        bad_request("prompt", "'prompt' is empty (it needs at least one token)");
}

std::string message_content(const json& c, const std::string& name) {
    if (c.is_string()) return c.get<std::string>();
    if (!c.is_array())
        bad_request(name, fmt::format("'{}' must be a string or an array of text parts, got {}",
                                      name, type_of(c)));
    std::string text;
    for (size_t i = 0; i < c.size(); ++i) {
        const std::string part = fmt::format("{}[{}]", name, i);
        if (!c[i].is_object()) bad_request(part, fmt::format("'{}' must be an object", part));
        check_known(c[i], {"type", "text"}, part);
        if (!c[i].contains("type") || get_string(c[i]["type"], part + ".type") != "text")
            bad_request(part + ".type",
                        fmt::format("'{}.type' must be \"text\" (the only content part this "
                                    "server reads)",
                                    part));
        if (!c[i].contains("text")) bad_request(part + ".text", fmt::format("'{}.text' is missing", part));
        text += get_string(c[i]["text"], part + ".text");
    }
    return text;
}

void parse_messages(const json& m, CompletionRequest& r) {
    if (!m.is_array() || m.empty())
        bad_request("messages", "'messages' must be a non-empty array of {role, content} objects");
    for (size_t i = 0; i < m.size(); ++i) {
        const std::string name = fmt::format("messages[{}]", i);
        const json& msg = m[i];
        if (!msg.is_object())
            bad_request(name, fmt::format("'{}' must be an object, got {}", name, type_of(msg)));
        check_known(msg, {"role", "content", "name"}, name);
        if (!msg.contains("role")) bad_request(name + ".role", fmt::format("'{}.role' is missing", name));
        const std::string& role = get_string(msg["role"], name + ".role");
        if (std::find(kRoles.begin(), kRoles.end(), role) == kRoles.end())
            bad_request(name + ".role", fmt::format("'{}.role' is '{}'; valid roles: {}", name,
                                                    role, join(kRoles)));
        if (!msg.contains("content") || msg["content"].is_null())
            bad_request(name + ".content", fmt::format("'{}.content' is missing", name));
        if (msg.contains("name")) get_string(msg["name"], name + ".name");
        r.messages.push_back({role, message_content(msg["content"], name + ".content")});
    }
}

void parse_stop(const json& s, CompletionRequest& r) {
    std::vector<std::string> stops;
    if (s.is_string()) {
        stops.push_back(s.get<std::string>());
    } else if (s.is_array()) {
        for (size_t i = 0; i < s.size(); ++i)
            stops.push_back(get_string(s[i], fmt::format("stop[{}]", i)));
    } else {
        bad_request("stop", fmt::format("'stop' must be a string or an array of strings, got {}",
                                        type_of(s)));
    }
    if (stops.size() > kMaxStopStrings)
        bad_request("stop", fmt::format("'stop' has {} strings; at most {} are allowed",
                                        stops.size(), kMaxStopStrings));
    for (size_t i = 0; i < stops.size(); ++i) {
        if (stops[i].empty()) bad_request("stop", fmt::format("stop string {} is empty", i));
        if (stops[i].size() > kMaxStopBytes)
            bad_request("stop", fmt::format("stop string {} has {} bytes; at most {} are allowed",
                                            i, stops[i].size(), kMaxStopBytes));
    }
    r.stop = std::move(stops);
}

// Collapses blank lines (a blank line ends a turn in the template) and trims.
std::string clean_turn(const std::string& text) {
    std::string s;
    for (char c : text)
        if (c != '\r') s += c;
    std::string out;
    for (char c : s) {
        if (c == '\n' && !out.empty() && out.back() == '\n') continue;
        out += c;
    }
    const size_t a = out.find_first_not_of(" \t\n");
    if (a == std::string::npos) return "";
    const size_t b = out.find_last_not_of(" \t\n");
    return out.substr(a, b - a + 1);
}

}  // namespace

CompletionRequest parse_request(std::string_view body, Endpoint endpoint,
                                const RequestLimits& limits) {
    const size_t bad = text::find_invalid_utf8(body);
    if (bad != std::string_view::npos)
        bad_request("", fmt::format("the request body is not valid UTF-8 (byte offset {})", bad),
                    "invalid_utf8");
    json j;
    try {
        j = json::parse(body);
    } catch (const json::exception& e) {
        bad_request("", fmt::format("the request body is not valid JSON: {}", e.what()),
                    "invalid_json");
    }
    if (!j.is_object())
        bad_request("", fmt::format("the request body must be a JSON object, got {}", type_of(j)),
                    "invalid_json");
    const bool chat = endpoint == Endpoint::chat;
    check_known(j, chat ? kChatFields : kCompletionFields, "");

    CompletionRequest r;
    r.endpoint = endpoint;
    auto given = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
    if (given("model")) r.model = get_string(j["model"], "model");
    if (chat) {
        if (!j.contains("messages")) bad_request("messages", "'messages' is missing");
        parse_messages(j["messages"], r);
    } else {
        if (!j.contains("prompt")) bad_request("prompt", "'prompt' is missing");
        parse_prompt(j["prompt"], r);
    }
    for (const char* key : {"max_tokens", "max_completion_tokens"})
        if (given(key)) r.max_tokens = get_int(j[key], key, 1, limits.max_tokens);
    infer::SamplerConfig& s = r.sampler;
    if (given("temperature")) s.temperature = get_number(j["temperature"], "temperature", 0, 2);
    if (given("top_p")) s.top_p = get_number(j["top_p"], "top_p", 0, 1, /*lo_open=*/true);
    if (given("top_k")) s.top_k = get_int(j["top_k"], "top_k", 0, INT32_MAX);
    if (given("presence_penalty"))
        s.presence_penalty = get_number(j["presence_penalty"], "presence_penalty", -2, 2);
    if (given("frequency_penalty"))
        s.frequency_penalty = get_number(j["frequency_penalty"], "frequency_penalty", -2, 2);
    if (given("seed")) {
        const json& v = j["seed"];
        if (!v.is_number_integer())
            bad_request("seed", fmt::format("'seed' must be an integer, got {} ({})", type_of(v),
                                            shown(v)));
        s.seed = v.is_number_unsigned() ? v.get<uint64_t>()
                                        : static_cast<uint64_t>(v.get<int64_t>());
        r.seed_given = true;
    }
    if (given("stop")) parse_stop(j["stop"], r);
    if (given("stream")) r.stream = get_bool(j["stream"], "stream");
    if (given("ignore_eos")) r.ignore_eos = get_bool(j["ignore_eos"], "ignore_eos");
    if (given("stream_options")) {
        const json& o = j["stream_options"];
        if (!o.is_object()) bad_request("stream_options", "'stream_options' must be an object");
        check_known(o, {"include_usage"}, "stream_options");
        if (o.contains("include_usage") && !o["include_usage"].is_null())
            r.include_usage = get_bool(o["include_usage"], "stream_options.include_usage");
    }
    if (given("n") && get_int(j["n"], "n", 1, INT32_MAX) != 1)
        bad_request("n", "'n' must be 1: this server returns one choice per request");
    if (given("user")) get_string(j["user"], "user");
    try {
        s.validate();
    } catch (const Error& e) {
        bad_request("", e.what());
    }
    return r;
}

std::string chat_prompt(const std::vector<ChatMessage>& messages) {
    std::string out;
    for (const ChatMessage& m : messages) {
        const char* who = m.role == "user" ? "User" : m.role == "assistant" ? "Assistant" : "System";
        out += fmt::format("{}: {}\n\n", who, clean_turn(m.content));
    }
    out += "Assistant:";
    return out;
}

JobSpec make_job_spec(const CompletionRequest& req, const text::Tokenizer& tokenizer,
                      int64_t model_vocab, const RequestLimits& limits) {
    JobSpec spec;
    if (req.endpoint == Endpoint::chat) {
        spec.prompt = tokenizer.encode(chat_prompt(req.messages));
        spec.stop.push_back(kChatStop);
        spec.trim_leading_space = true;
    } else if (req.prompt_is_ids) {
        for (size_t i = 0; i < req.prompt_ids.size(); ++i)
            if (req.prompt_ids[i] < 0 || req.prompt_ids[i] >= model_vocab)
                bad_request("prompt",
                            fmt::format("prompt token {} (id {}) is out of range [0, {})", i,
                                        req.prompt_ids[i], model_vocab),
                            "token_out_of_range");
        spec.prompt.assign(req.prompt_ids.begin(), req.prompt_ids.end());
    } else {
        spec.prompt = tokenizer.encode(req.prompt);
    }
    if (spec.prompt.empty()) bad_request("prompt", "the prompt is empty (it needs at least one token)");
    const int64_t n = static_cast<int64_t>(spec.prompt.size());
    if (n > limits.max_prompt_tokens)
        bad_request(req.endpoint == Endpoint::chat ? "messages" : "prompt",
                    fmt::format("the prompt has {} tokens; this server takes at most {} "
                                "(--max-prompt-tokens)",
                                n, limits.max_prompt_tokens),
                    "context_length_exceeded");
    for (const auto& s : req.stop) spec.stop.push_back(s);
    spec.sampler = req.sampler;
    spec.ignore_eos = req.ignore_eos;
    if (!req.seed_given) {
        std::random_device rd;
        spec.sampler.seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    }
    spec.max_tokens = req.max_tokens >= 0 ? req.max_tokens
                                          : std::min(limits.default_max_tokens, limits.max_tokens);
    return spec;
}

// ---- responses --------------------------------------------------------------------------------

std::string new_response_id(Endpoint endpoint) {
    static std::atomic<uint64_t> counter{0};
    static const uint64_t salt = [] {
        std::random_device rd;
        return (static_cast<uint64_t>(rd()) << 32) ^ rd();
    }();
    const uint64_t n = counter.fetch_add(1) + 1;
    return fmt::format("{}-{:012x}{:06x}", endpoint == Endpoint::chat ? "chatcmpl" : "cmpl",
                       salt & 0xffffffffffffULL, n & 0xffffff);
}

json usage_json(int64_t prompt_tokens, int64_t completion_tokens) {
    return {{"prompt_tokens", prompt_tokens},
            {"completion_tokens", completion_tokens},
            {"total_tokens", prompt_tokens + completion_tokens}};
}

namespace {

json finish_json(const std::string& finish_reason) {
    return finish_reason.empty() ? json(nullptr) : json(finish_reason);
}

json header(Endpoint endpoint, const ResponseMeta& meta, const char* object) {
    return {{"id", meta.id}, {"object", object}, {"created", meta.created}, {"model", meta.model}};
}

}  // namespace

json completion_response(Endpoint endpoint, const ResponseMeta& meta, const std::string& text,
                         const std::string& finish_reason, int64_t prompt_tokens,
                         int64_t completion_tokens) {
    json r;
    if (endpoint == Endpoint::chat) {
        r = header(endpoint, meta, "chat.completion");
        r["choices"] = json::array({{{"index", 0},
                                     {"message", {{"role", "assistant"}, {"content", text}}},
                                     {"logprobs", nullptr},
                                     {"finish_reason", finish_json(finish_reason)}}});
    } else {
        r = header(endpoint, meta, "text_completion");
        r["choices"] = json::array({{{"index", 0},
                                     {"text", text},
                                     {"logprobs", nullptr},
                                     {"finish_reason", finish_json(finish_reason)}}});
    }
    r["usage"] = usage_json(prompt_tokens, completion_tokens);
    return r;
}

json stream_chunk(Endpoint endpoint, const ResponseMeta& meta, const std::string& text,
                  const std::string& finish_reason, bool first) {
    json r;
    if (endpoint == Endpoint::chat) {
        r = header(endpoint, meta, "chat.completion.chunk");
        json delta = json::object();
        if (first) delta["role"] = "assistant";
        if (first || !text.empty()) delta["content"] = text;
        r["choices"] = json::array({{{"index", 0},
                                     {"delta", delta},
                                     {"logprobs", nullptr},
                                     {"finish_reason", finish_json(finish_reason)}}});
    } else {
        r = header(endpoint, meta, "text_completion");
        r["choices"] = json::array({{{"index", 0},
                                     {"text", text},
                                     {"logprobs", nullptr},
                                     {"finish_reason", finish_json(finish_reason)}}});
    }
    return r;
}

json usage_chunk(Endpoint endpoint, const ResponseMeta& meta, int64_t prompt_tokens,
                 int64_t completion_tokens) {
    json r = header(endpoint, meta,
                    endpoint == Endpoint::chat ? "chat.completion.chunk" : "text_completion");
    r["choices"] = json::array();
    r["usage"] = usage_json(prompt_tokens, completion_tokens);
    return r;
}

json error_json(const ApiError& e) {
    return {{"error",
             {{"message", e.message},
              {"type", e.type},
              {"param", e.param.empty() ? json(nullptr) : json(e.param)},
              {"code", e.code.empty() ? json(nullptr) : json(e.code)}}}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sse_event(const json& j) { return "data: " + dump(j) + "\n\n"; }

}  // namespace goose::serve
