// Whole-file writes that readers never see half done: the bytes go to "<path>.tmp.<pid>",
// which is then renamed over path. Checkpoints, reports, traces, generated data and port
// files all go through here.
#pragma once
#include <cstddef>
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

// "a/b/c.bin" -> "a/b"; "c.bin" -> "."; "/c.bin" -> "/".
std::string parent_directory(const std::string& path);

}  // namespace ts
