// Reruns and resumes the way people do them: a second run pointed at a used checkpoint
// directory, --resume with changed flags, --resume of a finished run, --init under another
// batch. Each must end as designed, and no checkpoint already saved may be lost.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "checkpoint_store.h"
#include "network.h"
#include "run_helpers.h"

namespace fs = std::filesystem;
using Catch::Contains;

namespace {

using ts_test::fresh_dir;
using ts_test::with;

const std::vector<std::string> kOne = {"--procs", "1", "--threads", "1", "--seed", "5",
                                       "--eval-every", "0", "--progress", "off"};

struct Ran {
  int rc;
  std::string out, err;
};

Ran run(const std::string& tag, const std::vector<std::string>& flags, double timeout_s = 120) {
  ts_test::Process p = ts_test::start(tag, ts_test::coordinator_args(with(kOne, flags)));
  const int rc = ts_test::wait_exit(p, timeout_s);
  return {rc, p.out(), p.err()};
}

std::vector<std::pair<std::string, std::string>> files_of(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> f;
  for (const std::string& path : ts::CheckpointStore(dir, 1).list()) f.emplace_back(path, ts_test::read_text(path));
  return f;
}

}  // namespace

TEST_CASE("a fresh run into another run's checkpoint directory is refused and deletes nothing, "
          "and with --checkpoint-overwrite it replaces them after its own first checkpoint",
          "[integration][rerun]") {
  const std::string dir = fresh_dir("rerun_dir");
  const std::vector<std::string> ck = {"--checkpoint-dir", dir, "--checkpoint-every", "10"};
  const Ran first = run("rerun_first", with(ck, {"--steps", "60"}));
  INFO(first.out << first.err);
  REQUIRE(first.rc == 0);
  const auto before = files_of(dir);
  REQUIRE(before.size() == 3);  // steps 60, 50, 40

  const Ran second = run("rerun_second", with(ck, {"--steps", "30"}));
  INFO(second.out << second.err);
  CHECK(second.rc == 2);
  CHECK_THAT(second.err, Contains("--checkpoint-dir " + dir + " already holds 3 checkpoint(s) of another run") &&
                             Contains("step-000000000060.ckpt") && Contains("--resume") &&
                             Contains("--checkpoint-overwrite"));
  CHECK(files_of(dir) == before);  // not a byte changed

  const Ran over = run("rerun_overwrite", with(ck, {"--steps", "30", "--checkpoint-overwrite"}));
  INFO(over.out << over.err);
  REQUIRE(over.rc == 0);
  CHECK_THAT(over.out, Contains("deleted 3 checkpoint(s) of another run"));
  ts::CheckpointStore store(dir, 3);
  const auto after = store.list();
  REQUIRE(after.size() == 3);
  CHECK_THAT(after[0], Contains("step-000000000030.ckpt"));
  CHECK_THAT(after[2], Contains("step-000000000010.ckpt"));  // the new run's own files all kept
  const std::string lineage = ts::read_checkpoint_label(after[0]).lineage;
  for (const auto& path : after) CHECK(ts::read_checkpoint_label(path).lineage == lineage);

  // And --resume continues that run, not the deleted one.
  const Ran resumed = run("rerun_resume", with(ck, {"--steps", "40", "--resume"}));
  INFO(resumed.out << resumed.err);
  REQUIRE(resumed.rc == 0);
  CHECK_THAT(resumed.err, Contains("resuming from " + dir + "/step-000000000030.ckpt"));
  CHECK_THAT(resumed.out, Contains("trained 10 steps") && Contains("(the run is at step 40)"));
  CHECK(ts::read_checkpoint_label(store.list()[0]).lineage == lineage);
}

TEST_CASE("a resume with flags that change the math is refused at once, naming each, and one "
          "that only adds epochs goes on",
          "[integration][rerun]") {
  const std::string dir = fresh_dir("resume_flags");
  const std::vector<std::string> ck = {"--checkpoint-dir", dir, "--batch", "128"};
  const Ran first = run("resume_flags_first", with(ck, {"--steps", "200"}));
  INFO(first.out << first.err);
  REQUIRE(first.rc == 0);
  // The reproduction: at batch 256 an epoch has 175 steps, and step 200 lies past it.
  const Ran batch = run("resume_flags_batch",
                        {"--checkpoint-dir", dir, "--batch", "256", "--steps", "400", "--resume"}, 60);
  INFO(batch.out << batch.err);
  CHECK(batch.rc == 2);
  CHECK_THAT(batch.err, Contains("was trained with other settings that change the math") &&
                            Contains("--batch (or --batch-per-worker x workers): 128 saved, 256 given") &&
                            Contains("--init"));
  const Ran several = run("resume_flags_several",
                          with(ck, {"--steps", "400", "--resume", "--lr", "0.01", "--no-shuffle",
                                    "--augment", "flip", "--optimizer", "sgd"}), 60);
  INFO(several.out << several.err);
  CHECK(several.rc == 2);
  CHECK_THAT(several.err, Contains("--lr: 0.001 saved, 0.01 given") &&
                              Contains("--no-shuffle: true saved, false given") &&
                              Contains("--augment: none saved, flip given") &&
                              Contains("--optimizer: adam saved, sgd given"));
  const Ran model = run("resume_flags_model", with(ck, {"--steps", "400", "--resume", "--model", "tf_tutorial_cnn"}), 60);
  INFO(model.out << model.err);
  CHECK(model.rc == 2);  // not a fresh tf_tutorial_cnn run beside the seed_cnn files
  CHECK_THAT(model.err, Contains("it holds model 'seed_cnn', this run uses 'tf_tutorial_cnn'") &&
                            Contains("none of the 1 checkpoint(s) in " + dir + " can be resumed"));
  const Ran same = run("resume_flags_same", with(ck, {"--steps", "210", "--resume", "--epochs", "5"}));
  INFO(same.out << same.err);
  CHECK(same.rc == 0);
  CHECK_THAT(same.out, Contains("trained 10 steps") && Contains("(the run is at step 210)"));
}

TEST_CASE("a resume of a run that finished its epochs says there is nothing left, and an init "
          "under another batch starts the next epoch and says so",
          "[integration][rerun]") {
  const std::string dir = fresh_dir("resume_done");
  const std::vector<std::string> ck = {"--checkpoint-dir", dir, "--batch", "1024", "--epochs", "1"};
  const Ran first = run("resume_done_first", ck);
  INFO(first.out << first.err);
  REQUIRE(first.rc == 0);
  const Ran again = run("resume_done_again", with(ck, {"--resume"}), 60);
  INFO(again.out << again.err);
  CHECK(again.rc == 0);
  CHECK_THAT(again.out, Contains("nothing left to train (raise --epochs to train on)"));
  CHECK_THAT(again.out, !Contains("trained"));

  const std::string init = ts::CheckpointStore(dir, 1).list().at(0);
  const Ran other = run("resume_done_init", {"--init", init, "--batch", "2048", "--epochs", "2",
                                             "--steps", "3"});
  INFO(other.out << other.err);
  CHECK(other.rc == 0);
  CHECK_THAT(other.err, Contains("was trained with another epoch plan") && Contains("starts at the beginning of epoch 2"));
  // 45,000 training records at a global batch of 2048: 21 full steps and a last short one.
  CHECK_THAT(other.out, Contains("epoch 2/2") && Contains("(stopped after 3 of 22 steps)"));
}
