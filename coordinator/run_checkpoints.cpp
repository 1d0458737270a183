#include "run_checkpoints.h"

#include <cstdio>
#include <cstdlib>

namespace ts {

namespace {

// --checkpoint-overwrite: the other run's files go once this run's first one is written.
void announce_removed(CheckpointStore& store) {
  const std::vector<std::string> removed = store.take_removed();
  if (removed.empty()) return;
  std::printf("threadsplit: --checkpoint-overwrite: deleted %zu checkpoint(s) of another run from %s\n",
              removed.size(), store.dir().c_str());
}

}  // namespace

TrainingState snapshot_state(const RunSetup& setup, const TrainingRun& run) {
  TrainingState st;
  st.model = setup.options.model;
  st.step = run.step();
  st.epoch = run.epochs_done();
  st.step_in_epoch = run.step_in_epoch();
  st.seed = setup.options.seed;
  st.params = run.params();
  st.config_json = setup.config_json;
  st.lineage = setup.lineage;
  return st;
}

void schedule_checkpoints(TrainingRun& run, const RunSetup& setup, CheckpointStore& store) {
  const std::string& every = setup.options.checkpoint_every;
  if (every.empty()) return;
  const bool epochs = every.back() == 'e';
  const long long k = std::strtoll(every.c_str(), nullptr, 10);  // checked by the flag table
  run.set_after_step([&run, &setup, &store, epochs, k](bool epoch_end) {
    const bool due = epochs ? epoch_end && run.epochs_done() % k == 0 : run.step() % k == 0;
    if (!due) return;
    try {
      const std::string path = store.save(setup.net, snapshot_state(setup, run), &run.optimizer());
      std::printf("threadsplit: checkpoint %s (step %lld)\n", path.c_str(), (long long)run.step());
      announce_removed(store);
      std::fflush(stdout);
    } catch (const std::exception& e) {
      throw RunAborted(std::string(e.what()) + " (--checkpoint-dir must stay writable)");
    }
  });
}

bool write_final_checkpoints(const RunSetup& setup, const TrainingRun& run, CheckpointStore* store,
                             bool failed, bool diverged, const std::string& stopped_by,
                             std::vector<std::string>* written_paths) {
  const TrainingState st = snapshot_state(setup, run);
  const std::string note = diverged ? ", the last good step before the run diverged"
                           : failed ? ", the last complete step before the abort"
                           : !stopped_by.empty() ? ", where " + stopped_by + " stopped the run"
                                                 : "";
  bool ok = true;
  auto write = [&](const std::string& path, bool rotate) {
    try {
      const std::string written = rotate ? store->save(setup.net, st, &run.optimizer()) : path;
      if (!rotate) save_checkpoint(path, setup.net, st, &run.optimizer());
      std::printf("saved %s (step %lld%s)\n", written.c_str(), (long long)st.step, note.c_str());
      if (written_paths) written_paths->push_back(written);
      if (rotate) announce_removed(*store);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "threadsplit: %s\n", e.what());
      ok = false;
    }
  };
  if (store) write("", true);
  if (!setup.options.save.empty()) write(setup.options.save, false);
  if (failed && !store && setup.options.save.empty())
    write("threadsplit-abort-" + setup.run_id + ".ckpt", false);
  std::fflush(stdout);
  return ok;
}

}  // namespace ts
