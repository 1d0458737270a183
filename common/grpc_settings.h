// The gRPC settings both ends of the wire agree on: the protocol version, the largest
// message, and keepalive pings, so a peer that vanished without closing its connection is
// noticed within ~40 s.
#pragma once

namespace grpc {
class ChannelArguments;
class ServerBuilder;
}  // namespace grpc

namespace ts {

constexpr unsigned kProtocolVersion = 1;

// Largest message either side accepts: parameters of the biggest network with headroom.
constexpr int kMaxMessageBytes = 256 << 20;

void configure_channel(grpc::ChannelArguments& args);
void configure_server(grpc::ServerBuilder& builder);

}  // namespace ts
