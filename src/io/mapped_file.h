// MappedFile: a whole file memory-mapped copy-on-write (readable and writable pages; writes never
// reach the file). Loaders wrap tensors around it and keep it alive through a shared_ptr.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace goose::io {

class MappedFile {
public:
    // Maps `path`; goose::Error "<who> '<path>': ..." when it cannot be opened or mapped.
    static std::shared_ptr<MappedFile> open(const std::string& path, const char* who);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    uint8_t* data() const { return data_; }  // nullptr for an empty file
    size_t size() const { return size_; }

private:
    MappedFile() = default;
    uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace goose::io
