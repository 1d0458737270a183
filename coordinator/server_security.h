// Who may join a run: the listening address (loopback unless --bind/--listen says otherwise),
// the transport (plain, or TLS with --tls-cert/--tls-key, client certificates required with
// --tls-ca), and what spawned workers need in their environment to connect. The run token
// is checked per Hello in trainer_service.cpp.
#pragma once
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "run_options.h"

namespace ts {

// Throws std::invalid_argument (one sentence naming the file) when a PEM file cannot be read.
std::shared_ptr<grpc::ServerCredentials> server_credentials(const RunOptions& o);

// THREADSPLIT_TLS_* for spawned workers: the root to check the coordinator with, and under
// --tls-ca the coordinator's own certificate and key as theirs (same host, same trust).
std::vector<std::string> worker_tls_environment(const RunOptions& o);

// Refuse to share the port with another process (gRPC sets SO_REUSEPORT by default, which
// lets a second coordinator bind a port in use and steal half its connections).
void exclusive_port(grpc::ServerBuilder& builder);

bool is_loopback(const std::string& host);

}  // namespace ts
