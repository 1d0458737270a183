// The gRPC settings both ends of the wire agree on: the protocol version, the largest
// message, and keepalive pings, so a peer that vanished without closing its connection is
// noticed within ~40 s.
#pragma once
#include <cstddef>

namespace grpc {
class ChannelArguments;
class ServerBuilder;
}  // namespace grpc

namespace ts {

constexpr unsigned kProtocolVersion = 1;

// Largest message either side accepts: parameters of the biggest network with headroom.
constexpr int kMaxMessageBytes = 256 << 20;

// What the coordinator accepts in one message: the largest thing a worker ever sends is a
// step result, num_params floats plus its counts and times, so a gradient's bytes plus 1 MiB
// (and never more than kMaxMessageBytes). Anyone who can connect may send a message this
// large before its Hello was looked at: the limit is what a stranger can make it allocate.
int coordinator_receive_limit(size_t num_params);

void configure_channel(grpc::ChannelArguments& args);
// The coordinator's server; max_receive_bytes: coordinator_receive_limit of the run's model.
void configure_server(grpc::ServerBuilder& builder, int max_receive_bytes);

}  // namespace ts
