// The run's secrets: the token comparison and the PEM files that TLS reads.
#pragma once
#include <string>

namespace ts {

// The PEM file at `path` (a certificate, key or CA for TLS). Throws std::invalid_argument
// naming `what` (the flag or variable it came from), the path and why: unreadable, or no
// -----BEGIN line.
std::string read_pem(const std::string& what, const std::string& path);

// Compares secrets in time independent of where they differ.
bool same_secret(const std::string& a, const std::string& b);

}  // namespace ts
