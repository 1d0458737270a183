#include "build_info.h"

#include <google/protobuf/stubs/common.h>
#include <grpcpp/grpcpp.h>

namespace ts {

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

}  // namespace ts
