// The OpenAI completions / chat completions schema: request bodies parsed and validated into
// typed structs (unknown fields, wrong types, NaN or out-of-range values: a 400 naming the
// field), the chat template, and the response and server-sent-event bodies.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "goose/infer/sampler.h"
#include "goose/text/tokenizer.h"
#include "serve/api_error.h"
#include "serve/scheduler.h"

namespace goose::serve {

enum class Endpoint { completions, chat };

struct RequestLimits {
    int64_t max_prompt_tokens = 8192;  // longer prompts: 400
    int64_t max_tokens = 4096;         // the largest max_tokens a request may ask for
    int64_t default_max_tokens = 256;  // when a request gives none
};

inline constexpr size_t kMaxStopStrings = 4;      // OpenAI's limit
inline constexpr size_t kMaxStopBytes = 256;      // per stop string

struct ChatMessage {
    std::string role;     // system | developer | user | assistant
    std::string content;  // the text (content parts of type "text" joined)
};

struct CompletionRequest {
    Endpoint endpoint = Endpoint::completions;
    std::string model;                  // "" when the request names none
    std::string prompt;                 // completions, text prompt
    std::vector<int64_t> prompt_ids;    // completions, token-id prompt (checked against V later)
    bool prompt_is_ids = false;
    std::vector<ChatMessage> messages;  // chat
    int64_t max_tokens = -1;            // -1: not given
    infer::SamplerConfig sampler;       // temperature, top_p, top_k, penalties, seed
    bool seed_given = false;
    std::vector<std::string> stop;
    bool stream = false;
    bool include_usage = false;         // stream_options.include_usage
    bool ignore_eos = false;            // extension (as vLLM's): never sample end of document
};

// Parses and validates a request body. ApiException (400) naming the field for: a body that is
// not JSON (invalid UTF-8 included) or not an object, unknown fields, wrong types, NaN/infinite or
// out-of-range numbers, empty prompts or messages, n != 1, more than kMaxStopStrings stops.
CompletionRequest parse_request(std::string_view body, Endpoint endpoint,
                                const RequestLimits& limits);

// The RWKV chat template: "System: …\n\nUser: …\n\nAssistant: …\n\n" then "Assistant:". Each
// message is trimmed and its blank lines collapsed (a blank line ends a turn).
std::string chat_prompt(const std::vector<ChatMessage>& messages);
// The stop string every chat reply gets: the start of the next user turn.
inline constexpr const char* kChatStop = "\n\nUser:";

// Tokenizes the prompt and checks it against the model (ids in [0, vocab), at most
// limits.max_prompt_tokens); fills the job's sampling, budget and stops. A request without a seed
// gets a random one.
JobSpec make_job_spec(const CompletionRequest& req, const text::Tokenizer& tokenizer,
                      int64_t model_vocab, const RequestLimits& limits);

// ---- responses --------------------------------------------------------------------------------

struct ResponseMeta {
    std::string id;     // "cmpl-…" / "chatcmpl-…"
    int64_t created;    // unix seconds
    std::string model;  // the served model's name
};

// A new response id for the endpoint, unique within the process.
std::string new_response_id(Endpoint endpoint);

nlohmann::json usage_json(int64_t prompt_tokens, int64_t completion_tokens);
// The whole (non-streamed) response.
nlohmann::json completion_response(Endpoint endpoint, const ResponseMeta& meta,
                                   const std::string& text, const std::string& finish_reason,
                                   int64_t prompt_tokens, int64_t completion_tokens);
// One streamed chunk: text (chat: delta.content) and, on the last one, the finish reason
// (empty: null). Chat's first chunk carries role "assistant" (first = true).
nlohmann::json stream_chunk(Endpoint endpoint, const ResponseMeta& meta, const std::string& text,
                            const std::string& finish_reason, bool first = false);
// The chunk sent after the last one when stream_options.include_usage: no choices, the usage.
nlohmann::json usage_chunk(Endpoint endpoint, const ResponseMeta& meta, int64_t prompt_tokens,
                           int64_t completion_tokens);

nlohmann::json error_json(const ApiError& e);
// JSON text; invalid UTF-8 in strings is replaced (U+FFFD), never an exception.
std::string dump(const nlohmann::json& j);
// One server-sent event: "data: <json>\n\n".
std::string sse_event(const nlohmann::json& j);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

}  // namespace goose::serve
