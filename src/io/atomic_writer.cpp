// AtomicWriter: temporary file + fsync + rename, written in pieces.
#include "io/atomic_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "goose/core/error.h"

namespace goose::io {

AtomicWriter::AtomicWriter(std::string path)
    : path_(std::move(path)), tmp_(path_ + ".tmp." + std::to_string(::getpid())) {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("cannot write '{}': {}", path_, std::strerror(errno));
}

AtomicWriter::~AtomicWriter() {
    if (!done_) {
        if (fd_ >= 0) ::close(fd_);
        ::unlink(tmp_.c_str());
    }
}

void AtomicWriter::write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    size_t done = 0;
    while (done < n) {
        const size_t chunk = std::min<size_t>(n - done, size_t(1) << 30);
        const ssize_t w = ::write(fd_, p + done, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            fail("cannot write '{}': {}", path_, std::strerror(errno));
        }
        done += static_cast<size_t>(w);
    }
    pos_ += n;
}

void AtomicWriter::commit() {
    if (::fsync(fd_) != 0) fail("cannot write '{}': {}", path_, std::strerror(errno));
    const int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) fail("cannot write '{}': {}", path_, std::strerror(errno));
    if (::rename(tmp_.c_str(), path_.c_str()) != 0)
        fail("cannot write '{}': {}", path_, std::strerror(errno));
    done_ = true;
}

}  // namespace goose::io
