// Version strings of what this build was made with, for the Hello and the run report.
#pragma once
#include <string>

namespace ts {

std::string grpc_version();
std::string protobuf_version();
std::string compiler_version();

}  // namespace ts
