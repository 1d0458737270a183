#include "atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
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

namespace {

// A new temporary beside `path`, opened for writing: never an existing file, and never
// through a symlink (O_EXCL|O_NOFOLLOW), so that nobody who can write the directory can plant
// one and have the write land elsewhere. The name is "<path>.tmp.<pid>", or, where something
// is in the way (a leftover of a process with the same pid that was killed mid-write, or a
// planted file), "<path>.tmp.<pid>.<random>": a leftover never blocks later writes for good.
int create_temporary(const std::string& path, std::string* tmp) {
  const std::string base = path + ".tmp." + std::to_string(::getpid());
  std::random_device random;
  int err = 0;
  for (int attempt = 0; attempt < 8; ++attempt) {
    *tmp = base;
    if (attempt > 0) {
      char suffix[20];
      std::snprintf(suffix, sizeof suffix, ".%08x%08x", unsigned(random()), unsigned(random()));
      *tmp += suffix;
    }
    const int fd = ::open(tmp->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0) return fd;
    err = errno;
    if (err != EEXIST) break;
  }
  throw std::runtime_error("cannot create " + *tmp + ": " + std::strerror(err) +
                           (err == EEXIST ? " (files, directories or symlinks of that name are in "
                                            "the way: remove them if no other process is writing)"
                                          : ""));
}

int write_all(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    p += n;
    size -= size_t(n);
  }
  return 0;
}

}  // namespace

void write_file_atomically(const std::string& path, const void* data, size_t size, bool durable) {
  std::string tmp;
  const int fd = create_temporary(path, &tmp);
  int err = write_all(fd, data, size);
  if (!err && durable && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && !err) err = errno;
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
