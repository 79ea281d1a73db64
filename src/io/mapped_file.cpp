// MappedFile: private (copy-on-write) mmap of a whole file.
#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "goose/core/error.h"

namespace goose::io {

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path, const char* who) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("{} '{}': cannot open: {}", who, path, std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        fail("{} '{}': cannot stat: {}", who, path, std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        fail("{} '{}': not a regular file", who, path);
    }
    std::shared_ptr<MappedFile> m(new MappedFile());
    m->size_ = static_cast<size_t>(st.st_size);
    if (m->size_ > 0) {
        void* p = ::mmap(nullptr, m->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd,
                         0);
        if (p == MAP_FAILED) {
            const int e = errno;
            ::close(fd);
            m->size_ = 0;
            fail("{} '{}': cannot map {} bytes: {}", who, path, st.st_size, std::strerror(e));
        }
        m->data_ = static_cast<uint8_t*>(p);
    }
    ::close(fd);  // the mapping stays valid
    return m;
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(data_, size_);
}

}  // namespace goose::io
