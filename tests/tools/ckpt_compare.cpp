// Compares the parameters and optimizer state of two checkpoints of one model, for the fault
// campaign (scripts/fault_campaign.sh) and refactors (scripts/compare_builds.sh):
//   ckpt_compare MODEL A.ckpt B.ckpt  (parameters, step, optimizer iterations and moments)
// Prints "bit-equal" (exit 0), or the largest difference (exit 1); exit 2 when one cannot
// be read, with the reader's sentence.
#include <cmath>
#include <cstdio>
#include <string>

#include "checkpoint.h"
#include "network.h"

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: ckpt_compare MODEL A.ckpt B.ckpt\n");
    return 2;
  }
  try {
    const ts::NetworkSpec net = ts::build_network(argv[1]);
    const ts::TrainingState a = ts::load_checkpoint(argv[2], net), b = ts::load_checkpoint(argv[3], net);
    double max_diff = 0;
    for (size_t i = 0; i < a.params.size(); ++i)
      max_diff = std::fmax(max_diff, std::fabs(double(a.params[i]) - double(b.params[i])));
    // --per-tensor (4th argument): where the parameters differ, tensor by tensor.
    if (argc > 4 && std::string(argv[4]) == "--per-tensor")
      for (const ts::ParamSpec& p : net.params) {
        double d = 0, m = 0;
        for (size_t i = p.offset; i < p.offset + p.size; ++i) {
          d = std::fmax(d, std::fabs(double(a.params[i]) - double(b.params[i])));
          m = std::fmax(m, std::fabs(double(a.params[i])));
        }
        std::printf("  %-32s max |p| %-10.4g max |diff| %.3g\n", p.name.c_str(), m, d);
      }
    // Optimizer moments too, where both carry them: a resumed run continues from them.
    bool same_slots = true;
    if (a.optimizer && b.optimizer) {
      same_slots = a.optimizer->slots.size() == b.optimizer->slots.size();
      for (size_t i = 0; same_slots && i < a.optimizer->slots.size(); ++i)
        same_slots = a.optimizer->slots[i].values == b.optimizer->slots[i].values;
    }
    const bool same = a.step == b.step && a.params == b.params && same_slots &&
                      (!a.optimizer || !b.optimizer || a.optimizer->iterations == b.optimizer->iterations);
    std::printf("%s: steps %lld and %lld, max |diff| %g\n", same ? "bit-equal" : "different",
                (long long)a.step, (long long)b.step, max_diff);
    return same ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ckpt_compare: %s\n", e.what());
    return 2;
  }
}
