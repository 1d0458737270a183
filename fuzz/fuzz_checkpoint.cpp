// libFuzzer: the checkpoint reader (common/checkpoint.h) on arbitrary files. Most random
// bytes fail the CRC-32 at once, so each input is also tried with its CRC fixed up when it
// parses as a Checkpoint message: that reaches the model, tensor and optimizer checks.
// The reader must throw CheckpointError, never crash; what it accepts must fit the network.
#include <unistd.h>

#include <google/protobuf/stubs/logging.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "checkpoint.h"
#include "checkpoint.pb.h"
#include "network.h"

namespace {

const ts::NetworkSpec& net() {
  static const ts::NetworkSpec n = ts::build_network("seed_cnn");
  return n;
}

const std::string& path() {
  static const std::string p = "/tmp/threadsplit-fuzz-checkpoint." + std::to_string(getpid());
  return p;
}

void try_load(const std::string& bytes) {
  {
    std::ofstream out(path(), std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
  }
  try {
    const ts::TrainingState st = ts::load_checkpoint(path(), net());
    if (st.params.size() != net().num_params) std::abort();
  } catch (const ts::CheckpointError&) {
  }
}

}  // namespace

// Protobuf logs every invalid UTF-8 string it parses; at fuzzing rates that is most of the
// time spent.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string raw(reinterpret_cast<const char*>(data), size);
  try_load(raw);
  threadsplit::Checkpoint c;
  if (c.ParseFromString(raw)) {
    c.set_crc32(0);
    std::string body;
    c.SerializeToString(&body);
    c.set_crc32(ts::checkpoint_crc32(body));
    std::string fixed;
    c.SerializeToString(&fixed);
    try_load(fixed);
  }
  return 0;
}
