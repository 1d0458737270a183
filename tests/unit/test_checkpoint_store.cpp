// The checkpoint directory: rotation keeps to its own lineage and never deletes the file it
// just wrote; resume refuses a directory that mixes runs.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "checkpoint_store.h"
#include "network.h"

using namespace ts;
namespace fs = std::filesystem;
using Catch::Contains;

namespace {

std::string fresh_dir(const std::string& name) {
  const fs::path dir = fs::path(TEST_TMP_DIR) / "checkpoint_store" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

TrainingState state_at(const NetworkSpec& net, int64_t step) {
  TrainingState st;
  st.step = step;
  st.params.assign(net.num_params, float(step));
  return st;
}

std::vector<int64_t> steps_of(const CheckpointStore& store, const std::string& lineage) {
  std::vector<int64_t> out;
  for (const auto& e : store.survey())
    if (e.lineage && *e.lineage == lineage) out.push_back(e.step);
  return out;
}

}  // namespace

TEST_CASE("rotation keeps the newest files of its own lineage only", "[checkpoint]") {
  const NetworkSpec net = build_network("seed_cnn");
  const std::string dir = fresh_dir("own_lineage");
  CheckpointStore first(dir, 2);
  first.set_lineage("aaaa");
  for (int64_t s : {10, 20, 30, 40, 50, 60}) first.save(net, state_at(net, s), nullptr);
  CHECK(steps_of(first, "aaaa") == std::vector<int64_t>{60, 50});

  // A second run in the same directory (the coordinator refuses this without
  // --checkpoint-overwrite; the store must be safe anyway): lower steps than the first run's.
  CheckpointStore second(dir, 2);
  second.set_lineage("bbbb");
  for (int64_t s : {10, 20, 30}) {
    const std::string written = second.save(net, state_at(net, s), nullptr);
    CHECK(fs::exists(written));  // never deleted right after it was written
  }
  CHECK(steps_of(second, "bbbb") == std::vector<int64_t>{30, 20});
  CHECK(steps_of(second, "aaaa") == std::vector<int64_t>{60, 50});  // the other run's files stay
}

TEST_CASE("the file just written is kept even where older-lineage files have higher steps",
          "[checkpoint]") {
  const NetworkSpec net = build_network("seed_cnn");
  const std::string dir = fresh_dir("just_written");
  CheckpointStore store(dir, 1);
  store.set_lineage("cccc");
  store.save(net, state_at(net, 15), nullptr);
  // Resumed from an earlier file (the step-15 one was damaged, say): step 11 is written next.
  const std::string written = store.save(net, state_at(net, 11), nullptr);
  CHECK(fs::exists(written));
  CHECK(steps_of(store, "cccc") == std::vector<int64_t>{11});
}

TEST_CASE("a file whose lineage cannot be read is never rotated away", "[checkpoint]") {
  const NetworkSpec net = build_network("seed_cnn");
  const std::string dir = fresh_dir("unreadable");
  CheckpointStore store(dir, 1);
  store.set_lineage("dddd");
  { std::ofstream(store.path_for(5)) << "not a checkpoint"; }
  store.save(net, state_at(net, 10), nullptr);
  store.save(net, state_at(net, 20), nullptr);
  CHECK(fs::exists(store.path_for(5)));
  CHECK_FALSE(fs::exists(store.path_for(10)));
  CHECK(fs::exists(store.path_for(20)));
}

TEST_CASE("overwriting removes the other runs' files only after its own first save",
          "[checkpoint]") {
  const NetworkSpec net = build_network("seed_cnn");
  const std::string dir = fresh_dir("overwrite");
  CheckpointStore old_run(dir, 3);
  old_run.set_lineage("old");
  for (int64_t s : {10, 20}) old_run.save(net, state_at(net, s), nullptr);
  CheckpointStore store(dir, 3);
  store.set_lineage("new");
  store.replace_others_after_next_save();
  CHECK(store.take_removed().empty());
  CHECK(store.list().size() == 2);  // nothing gone before this run has a checkpoint
  store.save(net, state_at(net, 5), nullptr);
  CHECK(store.take_removed().size() == 2);
  REQUIRE(store.list().size() == 1);
  CHECK(read_checkpoint_label(store.list()[0]).lineage == "new");
  store.save(net, state_at(net, 6), nullptr);
  CHECK(store.take_removed().empty());  // only once
}

TEST_CASE("resume refuses a directory holding two runs' checkpoints, naming both", "[checkpoint]") {
  const NetworkSpec net = build_network("seed_cnn");
  const std::string dir = fresh_dir("two_runs");
  CheckpointStore a(dir, 3), b(dir, 3);
  a.set_lineage("run-a");
  b.set_lineage("run-b");
  a.save(net, state_at(net, 60), nullptr);
  b.save(net, state_at(net, 30), nullptr);
  try {
    a.load_newest(net, nullptr);
    FAIL("two lineages were accepted");
  } catch (const CheckpointError& e) {
    CHECK_THAT(e.what(), Contains(dir) && Contains("lineage run-a: 1 file(s), newest step 60") &&
                             Contains("lineage run-b: 1 file(s), newest step 30") &&
                             Contains("move the other run's files"));
  }
  fs::remove(a.path_for(60));
  const auto loaded = a.load_newest(net, nullptr);
  REQUIRE(loaded);
  CHECK(loaded->state.step == 30);
  CHECK(loaded->state.lineage == "run-b");
}
