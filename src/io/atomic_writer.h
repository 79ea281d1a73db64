// AtomicWriter: streams a large file to a temporary beside the target, then fsync + rename on
// commit(), like io::write_file_atomic but without holding the whole file in memory. Destroyed
// without commit() (an exception), it removes the temporary and leaves the target untouched.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace goose::io {

class AtomicWriter {
public:
    explicit AtomicWriter(std::string path);
    ~AtomicWriter();
    AtomicWriter(const AtomicWriter&) = delete;
    AtomicWriter& operator=(const AtomicWriter&) = delete;

    void write(const void* data, size_t n);
    void write(std::string_view s) { write(s.data(), s.size()); }
    uint64_t position() const { return pos_; }  // bytes written so far
    void commit();

private:
    std::string path_, tmp_;
    int fd_ = -1;
    uint64_t pos_ = 0;
    bool done_ = false;
};

}  // namespace goose::io
