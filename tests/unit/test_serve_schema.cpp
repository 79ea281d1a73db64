// The server's OpenAI schema: request validation (each bad field named), the chat template,
// token-id prompts against the vocabulary, and the response / SSE bodies.
#include <gtest/gtest.h>

#include <functional>

#include "goose/text/tokenizer.h"
#include "serve/openai_schema.h"

namespace goose::serve {
namespace {

using nlohmann::json;

const RequestLimits kLimits{/*max_prompt_tokens=*/16, /*max_tokens=*/100,
                            /*default_max_tokens=*/7};

// f must throw ApiException with this status, param, and a message containing `part`.
void expect_api_error(const std::function<void()>& f, int status, const std::string& param,
                      const std::string& part) {
    try {
        f();
    } catch (const ApiException& e) {
        EXPECT_EQ(e.error().status, status) << e.what();
        EXPECT_EQ(e.error().param, param) << e.what();
        EXPECT_NE(e.error().message.find(part), std::string::npos)
            << "message: " << e.error().message << "\nexpected to contain: " << part;
        return;
    }
    ADD_FAILURE() << "no ApiException; expected one containing: " << part;
}

CompletionRequest completion(const std::string& body) {
    return parse_request(body, Endpoint::completions, kLimits);
}
CompletionRequest chat(const std::string& body) {
    return parse_request(body, Endpoint::chat, kLimits);
}

TEST(ServeSchema, ParsesEveryCompletionField) {
    const CompletionRequest r = completion(R"({
        "model": "m", "prompt": "Hi", "max_tokens": 12, "temperature": 0.5, "top_p": 0.9,
        "top_k": 40, "stop": ["a", "bc"], "seed": 42, "stream": true,
        "stream_options": {"include_usage": true}, "n": 1, "presence_penalty": 0.25,
        "frequency_penalty": -0.5, "user": "u"})");
    EXPECT_EQ(r.model, "m");
    EXPECT_EQ(r.prompt, "Hi");
    EXPECT_FALSE(r.prompt_is_ids);
    EXPECT_EQ(r.max_tokens, 12);
    EXPECT_DOUBLE_EQ(r.sampler.temperature, 0.5);
    EXPECT_DOUBLE_EQ(r.sampler.top_p, 0.9);
    EXPECT_EQ(r.sampler.top_k, 40);
    EXPECT_EQ(r.stop, (std::vector<std::string>{"a", "bc"}));
    EXPECT_EQ(r.sampler.seed, 42u);
    EXPECT_TRUE(r.seed_given);
    EXPECT_TRUE(r.stream);
    EXPECT_TRUE(r.include_usage);
    EXPECT_DOUBLE_EQ(r.sampler.presence_penalty, 0.25);
    EXPECT_DOUBLE_EQ(r.sampler.frequency_penalty, -0.5);
}

TEST(ServeSchema, NullMeansNotGivenAndDefaultsApply) {
    const CompletionRequest r =
        completion(R"({"prompt": "x", "max_tokens": null, "stop": null, "seed": null})");
    EXPECT_EQ(r.max_tokens, -1);
    EXPECT_TRUE(r.stop.empty());
    EXPECT_FALSE(r.seed_given);
    EXPECT_FALSE(r.stream);
    const auto tok = text::make_byte_tokenizer();
    const JobSpec spec = make_job_spec(r, *tok, 257, kLimits);
    EXPECT_EQ(spec.max_tokens, 7);
    EXPECT_EQ(spec.prompt, (std::vector<int32_t>{'x' + 1}));
}

TEST(ServeSchema, PromptForms) {
    EXPECT_EQ(completion(R"({"prompt": ["one"]})").prompt, "one");
    CompletionRequest r = completion(R"({"prompt": [5, 6, 7]})");
    EXPECT_TRUE(r.prompt_is_ids);
    EXPECT_EQ(r.prompt_ids, (std::vector<int64_t>{5, 6, 7}));
    r = completion(R"({"prompt": [[1, 2]]})");
    EXPECT_EQ(r.prompt_ids, (std::vector<int64_t>{1, 2}));
    expect_api_error([] { completion(R"({"prompt": ["a", "b"]})"); }, 400, "prompt",
                     "holds 2 prompts");
    expect_api_error([] { completion(R"({"prompt": ""})"); }, 400, "prompt", "empty");
    expect_api_error([] { completion(R"({"prompt": []})"); }, 400, "prompt", "must be a string");
    expect_api_error([] { completion(R"({"prompt": 3})"); }, 400, "prompt", "must be a string");
    expect_api_error([] { completion(R"({"prompt": [1, "x"]})"); }, 400, "prompt",
                     "'prompt[1]' must be a token id");
    expect_api_error([] { completion(R"({"max_tokens": 3})"); }, 400, "prompt", "missing");
}

TEST(ServeSchema, TokenIdsAreCheckedAgainstTheModelVocabulary) {
    const auto tok = text::make_byte_tokenizer();
    const CompletionRequest ok = completion(R"({"prompt": [0, 256]})");
    EXPECT_EQ(make_job_spec(ok, *tok, 257, kLimits).prompt, (std::vector<int32_t>{0, 256}));
    for (const char* body : {R"({"prompt": [1, 257]})", R"({"prompt": [1, -3]})",
                             R"({"prompt": [99999999999999]})"})
        expect_api_error([&] { make_job_spec(completion(body), *tok, 257, kLimits); }, 400,
                         "prompt", "is out of range [0, 257)");
}

TEST(ServeSchema, UnknownFieldsAreNamed) {
    expect_api_error([] { completion(R"({"prompt": "x", "temprature": 1})"); }, 400,
                     "temprature", "unknown field 'temprature' (known fields: model, prompt");
    expect_api_error([] { completion(R"({"prompt": "x", "messages": []})"); }, 400, "messages",
                     "unknown field 'messages'");
    expect_api_error([] { chat(R"({"messages": [{"role": "user", "content": "x"}], "prompt": "y"})"); },
                     400, "prompt", "unknown field 'prompt'");
    expect_api_error([] { chat(R"({"messages": [{"role": "user", "content": "x", "mood": 1}]})"); },
                     400, "messages[0].mood", "unknown field 'messages[0].mood'");
    expect_api_error(
        [] { completion(R"({"prompt": "x", "stream_options": {"include_usage": true, "z": 1}})"); },
        400, "stream_options.z", "unknown field");
}

TEST(ServeSchema, BadNumbersAreNamed) {
    expect_api_error([] { completion(R"({"prompt": "x", "temperature": -0.5})"); }, 400,
                     "temperature", "'temperature' must be a finite number in [0, 2], got -0.5");
    expect_api_error([] { completion(R"({"prompt": "x", "temperature": "hot"})"); }, 400,
                     "temperature", "must be a number, got a string");
    expect_api_error([] { completion(R"({"prompt": "x", "top_p": 0})"); }, 400, "top_p",
                     "(0, 1]");
    expect_api_error([] { completion(R"({"prompt": "x", "top_p": 1.5})"); }, 400, "top_p",
                     "(0, 1]");
    expect_api_error([] { completion(R"({"prompt": "x", "max_tokens": -1})"); }, 400,
                     "max_tokens", "'max_tokens' must be in [1, 100], got -1");
    expect_api_error([] { completion(R"({"prompt": "x", "max_tokens": 101})"); }, 400,
                     "max_tokens", "[1, 100]");
    expect_api_error([] { completion(R"({"prompt": "x", "max_tokens": 2.5})"); }, 400,
                     "max_tokens", "must be an integer");
    expect_api_error([] { completion(R"({"prompt": "x", "max_tokens": 18446744073709551615})"); },
                     400, "max_tokens", "[1, 100]");
    expect_api_error([] { completion(R"({"prompt": "x", "top_k": -1})"); }, 400, "top_k",
                     "'top_k' must be in [0, 2147483647], got -1");
    expect_api_error([] { completion(R"({"prompt": "x", "presence_penalty": 3})"); }, 400,
                     "presence_penalty", "[-2, 2]");
    expect_api_error([] { completion(R"({"prompt": "x", "seed": 1.5})"); }, 400, "seed",
                     "must be an integer");
    expect_api_error([] { completion(R"({"prompt": "x", "n": 2})"); }, 400, "n", "must be 1");
    expect_api_error([] { completion(R"({"prompt": "x", "stream": "yes"})"); }, 400, "stream",
                     "true or false");
    // NaN and infinities are not JSON: the body is rejected as such.
    expect_api_error([] { completion(R"({"prompt": "x", "temperature": NaN})"); }, 400, "",
                     "not valid JSON");
    expect_api_error([] { completion(R"({"prompt": "x", "temperature": 1e999})"); }, 400, "",
                     "not valid JSON");
    // A negative seed is a seed (as OpenAI's): its two's complement.
    EXPECT_EQ(completion(R"({"prompt": "x", "seed": -1})").sampler.seed, ~uint64_t{0});
}

TEST(ServeSchema, MalformedBodies) {
    expect_api_error([] { completion("{\"prompt\": \"x\""); }, 400, "", "not valid JSON");
    expect_api_error([] { completion(""); }, 400, "", "not valid JSON");
    expect_api_error([] { completion("[1, 2]"); }, 400, "", "must be a JSON object, got an array");
    expect_api_error([] { completion(std::string("{\"prompt\": \"a\xff\"}")); }, 400, "",
                     "not valid UTF-8 (byte offset 13)");
    // An escaped lone surrogate is not a character either.
    expect_api_error([] { completion(R"({"prompt": "\ud800"})"); }, 400, "", "not valid JSON");
}

TEST(ServeSchema, StopStrings) {
    EXPECT_EQ(completion(R"({"prompt": "x", "stop": "END"})").stop,
              (std::vector<std::string>{"END"}));
    expect_api_error([] { completion(R"({"prompt": "x", "stop": ["a","b","c","d","e"]})"); }, 400,
                     "stop", "at most 4");
    expect_api_error([] { completion(R"({"prompt": "x", "stop": [""]})"); }, 400, "stop",
                     "stop string 0 is empty");
    expect_api_error([] { completion(R"({"prompt": "x", "stop": [3]})"); }, 400, "stop[0]",
                     "must be a string");
    const std::string long_stop(kMaxStopBytes + 1, 'a');
    expect_api_error(
        [&] { completion(R"({"prompt": "x", "stop": ")" + long_stop + "\"}"); }, 400, "stop",
        "at most 256");
}

TEST(ServeSchema, ChatMessagesAndTemplate) {
    const CompletionRequest r = chat(R"({"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "  Hi\n\n\nthere  "},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
        {"role": "user", "content": "Bye", "name": "bob"}], "max_completion_tokens": 5})");
    ASSERT_EQ(r.messages.size(), 4u);
    EXPECT_EQ(r.max_tokens, 5);
    EXPECT_EQ(chat_prompt(r.messages),
              "System: Be brief.\n\nUser: Hi\nthere\n\nAssistant: Hello\n\nUser: Bye\n\n"
              "Assistant:");
    const auto tok = text::make_byte_tokenizer();
    const JobSpec spec = make_job_spec(
        chat(R"({"messages": [{"role": "user", "content": "Q"}], "stop": "!"})"), *tok, 257,
        RequestLimits{100, 100, 7});
    EXPECT_EQ(tok->decode(spec.prompt), "User: Q\n\nAssistant:");
    EXPECT_EQ(spec.stop, (std::vector<std::string>{"\n\nUser:", "!"}));
    EXPECT_TRUE(spec.trim_leading_space);

    expect_api_error([] { chat(R"({"messages": []})"); }, 400, "messages", "non-empty array");
    expect_api_error([] { chat(R"({"messages": [{"role": "robot", "content": "x"}]})"); }, 400,
                     "messages[0].role", "valid roles: system, developer, user, assistant");
    expect_api_error([] { chat(R"({"messages": [{"role": "user"}]})"); }, 400,
                     "messages[0].content", "missing");
    expect_api_error(
        [] { chat(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})"); },
        400, "messages[0].content[0].type", "must be \"text\"");
    expect_api_error([] { chat(R"({"messages": ["hi"]})"); }, 400, "messages[0]",
                     "must be an object");
}

TEST(ServeSchema, PromptLengthLimit) {
    const auto tok = text::make_byte_tokenizer();
    const CompletionRequest r = completion(R"({"prompt": "0123456789abcdefg"})");  // 17 bytes
    expect_api_error([&] { make_job_spec(r, *tok, 257, kLimits); }, 400, "prompt",
                     "the prompt has 17 tokens; this server takes at most 16");
}

TEST(ServeSchema, SeedlessRequestsGetDifferentSeeds) {
    const auto tok = text::make_byte_tokenizer();
    const CompletionRequest r = completion(R"({"prompt": "x"})");
    EXPECT_NE(make_job_spec(r, *tok, 257, kLimits).sampler.seed,
              make_job_spec(r, *tok, 257, kLimits).sampler.seed);
}

TEST(ServeSchema, ResponseBodies) {
    const ResponseMeta meta{"cmpl-1", 123, "tiny"};
    json j = completion_response(Endpoint::completions, meta, "abc", "length", 3, 4);
    EXPECT_EQ(j["object"], "text_completion");
    EXPECT_EQ(j["model"], "tiny");
    EXPECT_EQ(j["choices"][0]["text"], "abc");
    EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(j["usage"], json({{"prompt_tokens", 3}, {"completion_tokens", 4},
                                {"total_tokens", 7}}));
    j = completion_response(Endpoint::chat, meta, "hi", "stop", 1, 1);
    EXPECT_EQ(j["object"], "chat.completion");
    EXPECT_EQ(j["choices"][0]["message"], json({{"role", "assistant"}, {"content", "hi"}}));

    j = stream_chunk(Endpoint::chat, meta, "", "", /*first=*/true);
    EXPECT_EQ(j["object"], "chat.completion.chunk");
    EXPECT_EQ(j["choices"][0]["delta"], json({{"role", "assistant"}, {"content", ""}}));
    EXPECT_TRUE(j["choices"][0]["finish_reason"].is_null());
    j = stream_chunk(Endpoint::chat, meta, "", "stop");
    EXPECT_EQ(j["choices"][0]["delta"], json::object());
    EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
    j = usage_chunk(Endpoint::completions, meta, 2, 5);
    EXPECT_TRUE(j["choices"].empty());
    EXPECT_EQ(j["usage"]["total_tokens"], 7);

    EXPECT_EQ(sse_event(json({{"a", 1}})), "data: {\"a\":1}\n\n");
    const std::string err = dump(error_json(ApiError{400, "bad \xff", "invalid_request_error",
                                                     "temperature", ""}));
    EXPECT_EQ(err, "{\"error\":{\"code\":null,\"message\":\"bad \xEF\xBF\xBD\",\"param\":"
                   "\"temperature\",\"type\":\"invalid_request_error\"}}");
    EXPECT_NE(new_response_id(Endpoint::chat), new_response_id(Endpoint::chat));
    EXPECT_EQ(new_response_id(Endpoint::chat).rfind("chatcmpl-", 0), 0u);
}

}  // namespace
}  // namespace goose::serve
