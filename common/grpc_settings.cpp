#include "grpc_settings.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/channel_arguments.h>

namespace ts {

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

int coordinator_receive_limit(size_t num_params) {
  const size_t margin = size_t(1) << 20;
  const size_t want = num_params * sizeof(float) + margin;
  return want > size_t(kMaxMessageBytes) ? kMaxMessageBytes : int(want);
}

void configure_server(grpc::ServerBuilder& builder, int max_receive_bytes) {
  builder.SetMaxReceiveMessageSize(max_receive_bytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  // Accept the workers' keepalive pings even while no step is running (long evaluations).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
}

}  // namespace ts
