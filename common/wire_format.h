// What both ends of the wire (proto/trainer.proto) agree on beyond the messages: the protocol
// version, how float buffers are packed, the channel settings, and library version strings.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace grpc {
class ChannelArguments;
class ServerBuilder;
}  // namespace grpc

namespace ts {

constexpr unsigned kProtocolVersion = 1;

// Largest message either side accepts: parameters of the biggest network with headroom.
constexpr int kMaxMessageBytes = 256 << 20;

// Packed little-endian float32 (this project runs on little-endian hosts only).
std::string pack_floats(const float* data, size_t n);
void pack_floats(const float* data, size_t n, std::string* out);

// Unpacks exactly `n` floats into `out`. Returns an empty string on success, else one
// sentence saying what was wrong (size, or the first non-finite value and its position).
std::string unpack_floats(const std::string& bytes, size_t n, float* out, const char* what);

// The position of the first non-finite float among the n packed in `bytes` (no alignment
// assumed), or n when all are finite. Scans in blocks without branches, so it vectorizes:
// the coordinator checks every gradient on its way in.
size_t first_nonfinite(const char* bytes, size_t n);

// acc[i] += the i-th float packed in `bytes`, which holds exactly n (the caller checked),
// straight from the bytes: no copy, no alignment assumed.
void add_packed_floats(const std::string& bytes, float* acc, size_t n);

// The PEM file at `path` (a certificate, key or CA for TLS). Throws std::invalid_argument
// naming `what` (the flag or variable it came from), the path and why: unreadable, or no
// -----BEGIN line.
std::string read_pem(const std::string& what, const std::string& path);

// Channel / server settings: message size limits and keepalive pings, so a peer that vanished
// without closing its connection is noticed within ~40 s.
void configure_channel(grpc::ChannelArguments& args);
void configure_server(grpc::ServerBuilder& builder);

std::string grpc_version();
std::string protobuf_version();
std::string compiler_version();

// Compares secrets in time independent of where they differ.
bool same_secret(const std::string& a, const std::string& b);

}  // namespace ts
