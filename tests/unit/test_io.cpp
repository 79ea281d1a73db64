// Atomic file writes leave the old file or the new one, never a half-written one.
#include <gtest/gtest.h>

#include <filesystem>

#include "goose/core/error.h"
#include "goose/io/atomic_file.h"

namespace goose {
namespace {

TEST(AtomicFile, WritesReplacesAndReportsErrors) {
    const auto dir = std::filesystem::temp_directory_path() / "goose_test_io";
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "a.txt").string();
    io::write_file_atomic(path, "first");
    EXPECT_EQ(io::read_file(path), "first");
    io::write_file_atomic(path, "second");
    EXPECT_EQ(io::read_file(path), "second");
    for (auto& e : std::filesystem::directory_iterator(dir))
        EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos);  // no leftovers
    EXPECT_THROW(io::write_file_atomic((dir / "missing" / "x").string(), "x"), Error);
    EXPECT_THROW(io::read_file((dir / "nope").string()), Error);
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace goose
