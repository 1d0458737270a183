#include "wire_format.h"

#include <google/protobuf/stubs/common.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/channel_arguments.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "atomic_file.h"

namespace ts {

static_assert(sizeof(float) == 4, "float32 on the wire");

void pack_floats(const float* data, size_t n, std::string* out) {
  out->resize(n * sizeof(float));
  if (n) std::memcpy(&(*out)[0], data, n * sizeof(float));
}

std::string pack_floats(const float* data, size_t n) {
  std::string s;
  pack_floats(data, n, &s);
  return s;
}

size_t first_nonfinite(const char* bytes, size_t n) {
  // A float is NaN or infinite exactly when its exponent bits are all ones.
  auto nonfinite = [bytes](size_t i) {
    constexpr uint32_t kExponent = 0x7f800000u;
    uint32_t bits;
    std::memcpy(&bits, bytes + i * sizeof(float), sizeof bits);
    return uint32_t((bits & kExponent) == kExponent);
  };
  constexpr size_t kBlock = 256;
  for (size_t begin = 0; begin < n; begin += kBlock) {
    const size_t end = std::min(n, begin + kBlock);
    uint32_t any = 0;
    for (size_t i = begin; i < end; ++i) any |= nonfinite(i);
    if (!any) continue;
    for (size_t i = begin; i < end; ++i)
      if (nonfinite(i)) return i;
  }
  return n;
}

std::string unpack_floats(const std::string& bytes, size_t n, float* out, const char* what) {
  if (bytes.size() != n * sizeof(float))
    return std::string(what) + " has " + std::to_string(bytes.size()) + " bytes, expected " +
           std::to_string(n * sizeof(float)) + " (" + std::to_string(n) + " floats)";
  if (n) std::memcpy(out, bytes.data(), n * sizeof(float));
  const size_t bad = first_nonfinite(bytes.data(), n);
  if (bad < n)
    return std::string(what) + " holds a non-finite value (" + std::to_string(out[bad]) +
           ") at position " + std::to_string(bad);
  return "";
}

void add_packed_floats(const std::string& bytes, float* acc, size_t n) {
  const char* p = bytes.data();
  for (size_t i = 0; i < n; ++i) {
    float x;
    std::memcpy(&x, p + i * sizeof(float), sizeof(float));
    acc[i] += x;
  }
}

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

void configure_channel(grpc::ChannelArguments& args) {
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // One connection per worker, never shared: a fresh subchannel, no global pool.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
}

void configure_server(grpc::ServerBuilder& builder) {
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  // Accept the workers' keepalive pings even while no step is running (long evaluations).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
}

std::string grpc_version() { return grpc::Version(); }

std::string protobuf_version() {
  return google::protobuf::internal::VersionString(GOOGLE_PROTOBUF_VERSION);
}

std::string compiler_version() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("gcc ") + __VERSION__;
#else
  return "unknown";
#endif
}

bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = a.size() < b.size() ? a.size() : b.size();
  for (size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace ts
