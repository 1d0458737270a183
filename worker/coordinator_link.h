// The worker's end of its one stream to the coordinator (proto/trainer.proto): reach the
// coordinator, write, read under a silence watchdog, close after Goodbye. A stream that breaks
// or goes silent ends the worker with the WorkerExit saying which: exit 3, or 4 when the
// coordinator refused this worker.
#pragma once
#include <grpcpp/grpcpp.h>

#include <memory>

#include "step_loop.h"
#include "trainer.grpc.pb.h"

namespace ts {

class SilenceWatchdog;

class CoordinatorLink {
 public:
  explicit CoordinatorLink(const WorkerConfig& config);
  ~CoordinatorLink();  // a stream left without Finish() is cancelled, not leaked
  CoordinatorLink(const CoordinatorLink&) = delete;
  CoordinatorLink& operator=(const CoordinatorLink&) = delete;

  // Reaches the coordinator within config.connect_timeout_s (exit 3 if not; exit 2 for TLS
  // files that cannot be read) and opens the stream. Until set_silence_timeout, a read gives
  // up after connect_timeout_s of silence too.
  void open();
  void set_silence_timeout(double s);

  // The next message; `waiting_for` names it in the exit message when none comes.
  threadsplit::CoordinatorMessage read(const char* waiting_for);
  void write(const threadsplit::WorkerMessage& m);

  // Writes the last message and closes the stream in order; nothing can fail the run now.
  void close_with(const threadsplit::WorkerMessage& last);

 private:
  [[noreturn]] void lost(const char* waiting_for);

  const WorkerConfig& config_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<threadsplit::Trainer::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<SilenceWatchdog> watchdog_;
  std::unique_ptr<grpc::ClientReaderWriter<threadsplit::WorkerMessage, threadsplit::CoordinatorMessage>>
      stream_;
};

}  // namespace ts
