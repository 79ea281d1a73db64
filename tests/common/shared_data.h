// Where tests find the large shared data files (World vocabulary, LAMBADA): $GOOSE_SHARED_DATA if
// set, else ../shared/data beside the source tree. Empty when the file is absent (tests skip).
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>

namespace goose::test {

inline std::string shared_data_file(const std::string& name) {
    const char* env = std::getenv("GOOSE_SHARED_DATA");
#ifdef GOOSE_TEST_SOURCE_DIR
    const std::string dir = env && *env ? env : GOOSE_TEST_SOURCE_DIR "/../shared/data";
#else
    const std::string dir = env && *env ? env : "../shared/data";
#endif
    const std::string path = dir + "/" + name;
    return std::filesystem::is_regular_file(path) ? path : std::string();
}

}  // namespace goose::test
