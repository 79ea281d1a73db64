// An error answered to an HTTP client in OpenAI's shape: {"error": {"message", "type", "param",
// "code"}} with an HTTP status (4xx for the client's mistakes, 5xx for the server's).
#pragma once
#include <stdexcept>
#include <string>

namespace goose::serve {

struct ApiError {
    int status = 400;
    std::string message;
    std::string type = "invalid_request_error";  // or "server_error", "not_found_error", ...
    std::string param;                           // the offending field ("" = none)
    std::string code;                            // a short machine-readable code ("" = none)
};

class ApiException : public std::runtime_error {
public:
    explicit ApiException(ApiError e) : std::runtime_error(e.message), error_(std::move(e)) {}
    const ApiError& error() const { return error_; }

private:
    ApiError error_;
};

// 400 invalid_request_error naming `param`.
[[noreturn]] inline void bad_request(const std::string& param, const std::string& message,
                                     const std::string& code = "") {
    throw ApiException(ApiError{400, message, "invalid_request_error", param, code});
}

}  // namespace goose::serve
