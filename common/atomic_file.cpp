#include "atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace ts {

std::string read_whole_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    const int err = errno;
    throw FileReadError(err == ENOENT ? "no such file" : std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw FileReadError("not a regular file");
  }
  std::string bytes(size_t(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t got = ::read(fd, &bytes[done], bytes.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      const int err = got < 0 ? errno : 0;
      ::close(fd);
      throw FileReadError("read failed after " + std::to_string(done) + " of " +
                          std::to_string(bytes.size()) + " bytes" +
                          (err ? ": " + std::string(std::strerror(err)) : std::string(" (file shrank)")));
    }
    done += size_t(got);
  }
  ::close(fd);
  return bytes;
}

std::string parent_directory(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void write_file_atomically(const std::string& path, const void* data, size_t size, bool durable) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot create " + tmp + ": " + std::strerror(errno));
  int err = 0;
  if (std::fwrite(data, 1, size, f) != size) err = errno;
  if (!err && std::fflush(f) != 0) err = errno;
  if (!err && durable && ::fsync(::fileno(f)) != 0) err = errno;
  if (std::fclose(f) != 0 && !err) err = errno;
  if (err) {
    ::unlink(tmp.c_str());
    throw std::runtime_error("writing " + tmp + " failed: " + std::strerror(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot rename " + tmp + " to " + path + ": " + std::strerror(err));
  }
  if (!durable) return;
  // The rename is durable only once the directory entry is on disk.
  const std::string dir = parent_directory(path);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd < 0 || ::fsync(dfd) != 0) {
    err = errno;
    if (dfd >= 0) ::close(dfd);
    throw std::runtime_error(path + " written, but syncing directory " + dir + " failed: " +
                             std::strerror(err));
  }
  ::close(dfd);
}

}  // namespace ts
