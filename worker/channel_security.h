// How a worker connects: plain gRPC, or TLS when THREADSPLIT_TLS_CA (or --tls-ca) names the
// root to check the coordinator's certificate with; THREADSPLIT_TLS_CERT/KEY add a client
// certificate for coordinators started with --tls-ca. Paths, not secrets, travel in the
// environment.
#pragma once
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace ts {

struct ChannelSecurity {
  std::string ca, cert, key;  // PEM file paths; all empty: plain
};

// Throws std::invalid_argument naming a file that cannot be read.
std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const ChannelSecurity& s);

}  // namespace ts
