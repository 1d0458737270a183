#include "secrets.h"

#include <stdexcept>

#include "atomic_file.h"

namespace ts {

std::string read_pem(const std::string& what, const std::string& path) {
  std::string text;
  try {
    text = read_whole_file(path);
  } catch (const FileReadError& e) {
    throw std::invalid_argument(what + " " + path + " cannot be read (" + e.what() +
                                "; a PEM file is expected)");
  }
  if (text.find("-----BEGIN ") == std::string::npos)
    throw std::invalid_argument(what + " " + path + " is not a PEM file (no -----BEGIN line)");
  return text;
}

bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = a.size() < b.size() ? a.size() : b.size();
  for (size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace ts
