// Whole files: writes that readers never see half done (the bytes go to a new file
// "<path>.tmp.<pid>", created with O_CREAT|O_EXCL|O_NOFOLLOW so that a planted
// file or symlink of that name is never written through -- with a random suffix added when
// something is in the way -- then renamed over path), and reads that say why they failed.
// Checkpoints, reports, traces, generated data, port files and PEM files all go through here.
#pragma once
#include <cstddef>
#include <stdexcept>
#include <string>

namespace ts {

// With `durable`, the file is fsynced before the rename and its directory after it, so the
// new file survives a crash of the machine too. Throws std::runtime_error with the reason
// (naming the temporary or the path and the system's error text); the temporary is removed
// on every failure, and an existing file at path is left as it was.
void write_file_atomically(const std::string& path, const void* data, size_t size,
                           bool durable = false);
inline void write_file_atomically(const std::string& path, const std::string& bytes,
                                  bool durable = false) {
  write_file_atomically(path, bytes.data(), bytes.size(), durable);
}

// The whole of a regular file. Throws FileReadError, whose what() is the reason alone ("no such
// file", "not a regular file", the system's error text, or a short read), for the caller to
// put after the file's name and its own context.
class FileReadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
std::string read_whole_file(const std::string& path);

// "a/b/c.bin" -> "a/b"; "c.bin" -> "."; "/c.bin" -> "/".
std::string parent_directory(const std::string& path);

}  // namespace ts
