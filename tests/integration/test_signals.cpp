// Stop signals with real processes (coordinator/stop_signals.h): SIGTERM and SIGINT stop a
// run after a step with a final checkpoint, an "interrupted" report and exit 128 + signo; a
// second signal stops at once; a signal during setup exits at once, saving nothing; a run
// stopped by SIGTERM and resumed ends bit-equal to an unbroken one; a sweep passes a signal
// on to its trial and stops, and its trial dies with it when it is killed.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "checkpoint.h"
#include "checkpoint_store.h"
#include "core_set.h"
#include "json_io.h"
#include "network.h"
#include "run_helpers.h"
#include "skip.h"

namespace fs = std::filesystem;

namespace {

using ts_test::fresh_dir;
using ts_test::with;
using ts_test::wait_for_workers;
using ts_test::random_pause;
using ts_test::all_gone;
using ts_test::kill_all;

ts::TrainingState load(const std::string& path) {
  return ts::load_checkpoint(path, ts::build_network("seed_cnn"));
}

// Processes whose parent is `parent` (from /proc/<pid>/stat).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> kids;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = ts_test::read_text(e.path().string() + "/stat");
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    int ppid = 0;
    char state = 0;
    if (std::sscanf(stat.c_str() + paren + 1, " %c %d", &state, &ppid) == 2 && ppid == parent &&
        state != 'Z')
      kids.push_back(pid_t(std::stol(name)));
  }
  return kids;
}

// Until the report says how the workers ended: each said goodbye (a clean shutdown).
void check_clean_worker_shutdown(const ts::JsonNode& report) {
  const ts::JsonNode workers = report["workers"];
  REQUIRE(workers.size() == 2);
  for (const ts::JsonNode& w : workers.items()) {
    INFO(w.json().dump());
    CHECK(w.has("max_rss_kb"));  // from its Goodbye
  }
}

// One core when the box has only that; the runs below use two workers either way.
const std::vector<std::string> kTwoWorkers = {"--procs", "2", "--threads", "1", "--eval-every", "0",
                                              "--progress", "off"};

}  // namespace

TEST_CASE("SIGTERM stops the run after a step with a final checkpoint, an interrupted report and "
          "exit 143, and no worker outlives it",
          "[integration][signals]") {
  const std::string dir = fresh_dir("sigterm_stop");
  const std::string report = dir + "/report.json";
  ts_test::Process c = ts_test::start(
      "sigterm_stop", ts_test::coordinator_args(with(kTwoWorkers, {"--steps", "100000", "--checkpoint-dir",
                                                                   dir + "/ck", "--report", report})));
  const std::vector<pid_t> pids = wait_for_workers([&] { return c.out(); }, 2);
  REQUIRE(pids.size() == 2);
  random_pause(0.2, 1.5);
  kill(c.pid, SIGTERM);
  const int rc = ts_test::wait_exit(c, 120);
  INFO(c.out() << c.err());
  CHECK(rc == 128 + SIGTERM);
  CHECK(ts_test::wait_until([&] { return all_gone(pids); }, 10));
  kill_all(pids);
  CHECK_THAT(c.err(), Catch::Contains("threadsplit: SIGTERM: stopping after step") &&
                          Catch::Contains("checkpoint " + dir + "/ck/step-") &&
                          Catch::Contains("continue with --resume"));
  const ts::JsonNode r = ts::read_json_file(report);
  CHECK(r["status"].str() == "interrupted");
  CHECK(r["interrupted"]["signal"].str() == "SIGTERM");
  const int64_t after = int64_t(r["interrupted"]["after_step"].num());
  CHECK(after >= 1);
  CHECK(r["interrupted"]["steps_this_run"].num() == double(after));
  check_clean_worker_shutdown(r);
  ts::CheckpointStore store(dir + "/ck", 3);
  REQUIRE(store.list().size() == 1);
  const ts::TrainingState st = load(store.list()[0]);
  CHECK(st.step == after);
  REQUIRE(st.optimizer);
  CHECK(st.optimizer->iterations == after);
}

TEST_CASE("SIGINT (Ctrl-C) stops the run the same way, saves to --save and exits 130",
          "[integration][signals]") {
  const std::string dir = fresh_dir("sigint_stop");
  const std::string report = dir + "/report.json", save = dir + "/final.ckpt";
  ts_test::Process c = ts_test::start(
      "sigint_stop", ts_test::coordinator_args(with(kTwoWorkers, {"--steps", "100000", "--save", save,
                                                                  "--report", report})));
  const std::vector<pid_t> pids = wait_for_workers([&] { return c.out(); }, 2);
  REQUIRE(pids.size() == 2);
  random_pause(0.2, 1.0);
  kill(c.pid, SIGINT);
  const int rc = ts_test::wait_exit(c, 120);
  INFO(c.out() << c.err());
  CHECK(rc == 128 + SIGINT);
  CHECK(ts_test::wait_until([&] { return all_gone(pids); }, 10));
  kill_all(pids);
  CHECK_THAT(c.err(), Catch::Contains("threadsplit: SIGINT: stopping after step") &&
                          Catch::Contains("checkpoint " + save));
  const ts::JsonNode r = ts::read_json_file(report);
  CHECK(r["status"].str() == "interrupted");
  CHECK(r["interrupted"]["signal"].str() == "SIGINT");
  check_clean_worker_shutdown(r);
  CHECK(load(save).step == int64_t(r["interrupted"]["after_step"].num()));
}

TEST_CASE("a Ctrl-C sent to the whole process group, as a terminal sends it, stops the run once "
          "and cleanly: the workers ignore it and say goodbye",
          "[integration][signals]") {
  if (access("/usr/bin/setsid", X_OK) != 0) {
    ts_test::skip_test("/usr/bin/setsid is missing, so the run cannot have a process group of its own");
    return;
  }
  const std::string dir = fresh_dir("group_sigint");
  const std::string report = dir + "/report.json";
  // setsid execs the coordinator in a session and process group of its own (its pid is the
  // group's id), so the group signal below reaches it and its workers, not this test.
  std::vector<std::string> argv = ts_test::coordinator_args(
      with(kTwoWorkers, {"--steps", "100000", "--checkpoint-dir", dir + "/ck", "--report", report}));
  argv.insert(argv.begin(), "/usr/bin/setsid");
  ts_test::Process c = ts_test::start("group_sigint", argv);
  const std::vector<pid_t> pids = wait_for_workers([&] { return c.out(); }, 2);
  REQUIRE(pids.size() == 2);
  REQUIRE(getpgid(pids[0]) == c.pid);  // the workers share the coordinator's group
  random_pause(0.2, 1.0);
  kill(-c.pid, SIGINT);
  const int rc = ts_test::wait_exit(c, 120);
  INFO(c.out() << c.err());
  CHECK(rc == 128 + SIGINT);
  CHECK(ts_test::wait_until([&] { return all_gone(pids); }, 10));
  kill_all(pids);
  CHECK(c.err().find("a second signal):") == std::string::npos);  // one signal, not one per process
  const ts::JsonNode r = ts::read_json_file(report);
  CHECK(r["status"].str() == "interrupted");
  check_clean_worker_shutdown(r);
  ts::CheckpointStore store(dir + "/ck", 3);
  REQUIRE(store.list().size() == 1);
  CHECK(load(store.list()[0]).step == int64_t(r["interrupted"]["after_step"].num()));
}

TEST_CASE("a second signal stops at once, killing the workers, with the exit status of that signal",
          "[integration][signals]") {
  const std::string dir = fresh_dir("second_signal");
  ts_test::Process c = ts_test::start(
      "second_signal",
      ts_test::coordinator_args(with(kTwoWorkers, {"--steps", "100000", "--checkpoint-dir", dir,
                                                   "--failure-grace", "600", "--step-timeout", "600"})));
  const std::vector<pid_t> pids = wait_for_workers([&] { return c.out(); }, 2);
  REQUIRE(pids.size() == 2);
  // A stopped worker holds the step in flight, so the first signal cannot complete the stop.
  kill(pids[1], SIGSTOP);
  kill(c.pid, SIGTERM);
  REQUIRE(ts_test::wait_until([&] { return c.err().find("a second signal stops at once") != std::string::npos; }, 30));
  const auto sent = std::chrono::steady_clock::now();
  kill(c.pid, SIGHUP);
  const int rc = ts_test::wait_exit(c, 30);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
  INFO(c.out() << c.err());
  CHECK(rc == 128 + SIGHUP);
  CHECK(took < 10);  // at once: not after the step, which never ends
  CHECK_THAT(c.err(), Catch::Contains("SIGHUP (a second signal): stopping at once"));
  CHECK(ts_test::wait_until([&] { return all_gone(pids); }, 10));
  kill_all(pids);
  CHECK(ts::CheckpointStore(dir, 3).list().empty());  // no step finished after the first signal
}

TEST_CASE("a signal during setup exits at once with 128 + signo and saves nothing",
          "[integration][signals]") {
  const std::string dir = fresh_dir("setup_signal");
  // Waiting for external workers that never come: the run is still in its setup.
  ts_test::Process c = ts_test::start(
      "setup_signal", ts_test::coordinator_args({"--external-workers", "2", "--connect-timeout", "600",
                                                 "--checkpoint-dir", dir + "/ck", "--report",
                                                 dir + "/report.json"}),
      {"THREADSPLIT_TOKEN=setup-signal-token-1234"});
  REQUIRE(ts_test::wait_until([&] { return c.out().find("waiting for 2 workers") != std::string::npos; }, 60));
  kill(c.pid, SIGTERM);
  const int rc = ts_test::wait_exit(c, 30);
  INFO(c.out() << c.err());
  CHECK(rc == 128 + SIGTERM);
  CHECK_THAT(c.err(), Catch::Contains("SIGTERM: stopping at once (before training started: nothing was saved)"));
  CHECK((!fs::exists(dir + "/ck") || fs::is_empty(dir + "/ck")));
  CHECK_FALSE(fs::exists(dir + "/report.json"));
}

TEST_CASE("a SIGTERM during an evaluation round lets the round finish, then stops with the "
          "checkpoint of the last step and exit 143",
          "[integration][signals]") {
  const std::string dir = fresh_dir("eval_signal");
  const std::string report = dir + "/report.json";
  // --progress on prints "evaluating validation ..." when the round starts.
  ts_test::Process c = ts_test::start(
      "eval_signal", ts_test::coordinator_args({"--procs", "2", "--threads", "1", "--steps", "3",
                                                "--eval-every", "1", "--progress", "on",
                                                "--checkpoint-dir", dir + "/ck", "--report", report}));
  REQUIRE(ts_test::wait_until([&] { return c.out().find("evaluating validation") != std::string::npos; }, 120));
  kill(c.pid, SIGTERM);
  const int rc = ts_test::wait_exit(c, 120);
  INFO(c.out() << c.err());
  CHECK(rc == 128 + SIGTERM);
  const ts::JsonNode r = ts::read_json_file(report);
  CHECK(r["status"].str() == "interrupted");
  CHECK(r["interrupted"]["after_step"].num() == 3);
  REQUIRE(r["epochs"].size() == 1);
  CHECK(r["epochs"][0]["validation"]["samples"].num() > 0);  // the round in flight finished
  check_clean_worker_shutdown(r);
  ts::CheckpointStore store(dir + "/ck", 3);
  REQUIRE(store.list().size() == 1);
  CHECK(load(store.list()[0]).step == 3);
}

TEST_CASE("a run stopped by SIGTERM at a random step and resumed with --resume ends bit-equal to "
          "an unbroken run",
          "[integration][signals]") {
  const std::string dir = fresh_dir("sigterm_resume");
  // The signal below lands at a random step read off the progress bar, well before the end.
  const std::vector<std::string> common = {"--procs", "2", "--threads", "1", "--eval-every", "0",
                                           "--progress", "on", "--seed", "11", "--steps", "200"};
  ts_test::Process straight = ts_test::start(
      "sigterm_resume_straight", ts_test::coordinator_args(with(common, {"--save", dir + "/straight.ckpt"})));
  REQUIRE(ts_test::wait_exit(straight, 300) == 0);

  const std::vector<std::string> flags = with(common, {"--checkpoint-dir", dir + "/ck", "--checkpoint-every", "7"});
  ts_test::Process first = ts_test::start("sigterm_resume_first", ts_test::coordinator_args(flags));
  const std::vector<pid_t> pids = wait_for_workers([&] { return first.out(); }, 2);
  REQUIRE(pids.size() == 2);
  REQUIRE(ts_test::wait_for_random_step(first, 10, 100));
  kill(first.pid, SIGTERM);
  const int rc1 = ts_test::wait_exit(first, 120);
  INFO(first.out() << first.err());
  REQUIRE(rc1 == 128 + SIGTERM);
  CHECK(ts_test::wait_until([&] { return all_gone(pids); }, 10));
  kill_all(pids);
  ts::CheckpointStore store(dir + "/ck", 3);
  REQUIRE(!store.list().empty());
  const int64_t stopped_at = load(store.list()[0]).step;
  INFO("stopped after step " << stopped_at);
  CHECK(stopped_at < 200);
  CHECK_THAT(first.err(), Catch::Contains("stopping after step " + std::to_string(stopped_at) + " "));

  ts_test::Process second = ts_test::start("sigterm_resume_second", ts_test::coordinator_args(with(flags, {"--resume"})));
  const int rc2 = ts_test::wait_exit(second, 300);
  INFO(second.out() << second.err());
  REQUIRE(rc2 == 0);
  const ts::TrainingState resumed = load(store.list()[0]);
  const ts::TrainingState unbroken = load(dir + "/straight.ckpt");
  CHECK(resumed.step == 200);
  CHECK(resumed.params == unbroken.params);  // same P and T: bit for bit
  REQUIRE(resumed.optimizer);
  REQUIRE(unbroken.optimizer);
  CHECK(resumed.optimizer->iterations == unbroken.optimizer->iterations);
  REQUIRE(resumed.optimizer->slots.size() == unbroken.optimizer->slots.size());
  for (size_t i = 0; i < resumed.optimizer->slots.size(); ++i) {
    INFO("optimizer slot " << unbroken.optimizer->slots[i].name);
    CHECK(resumed.optimizer->slots[i].name == unbroken.optimizer->slots[i].name);
    CHECK(resumed.optimizer->slots[i].values == unbroken.optimizer->slots[i].values);
  }
}

namespace {

// A sweep of one long trial on one core.
ts_test::Process start_long_sweep(const std::string& name, const std::string& out) {
  const ts::CoreSet mine = ts::CoreSet::of_this_process();
  const std::string core = std::to_string(mine.cores().front());
  return ts_test::start(name, {THREADSPLIT_BIN, "sweep", "--data", ts_test::test_data_dir(), "--worker-bin",
                               THREADSPLIT_WORKER_BIN, "--out", out, "--models", "seed_cnn", "--steps",
                               "4000", "--warmup-steps", "1", "--repeats", "1", "--batch", "32",
                               "--batch-modes", "global", "--cores", core, "--trial-timeout", "600"});
}

// The trial coordinator (the sweep's one child) and its worker, once its worker has joined.
std::vector<pid_t> wait_for_trial(const ts_test::Process& sweep, const std::string& out) {
  std::vector<pid_t> pids;
  ts_test::wait_until(
      [&] {
        pids = ts_test::worker_pids(ts_test::read_text(out + "/trials/p0_r0.log"));
        return (pids.size() == 1 && pids[0] > 0) || ts_test::process_gone(sweep.pid);
      },
      120);
  const std::vector<pid_t> kids = children_of(sweep.pid);
  if (pids.size() != 1 || kids.size() != 1) return {};
  pids.insert(pids.begin(), kids[0]);
  return pids;
}

}  // namespace

TEST_CASE("a SIGTERM to a sweep is passed on to its trial, which stops, and the sweep exits 143 "
          "saying so",
          "[integration][signals][sweep]") {
  const std::string out = fresh_dir("sweep_sigterm");
  ts_test::Process sweep = start_long_sweep("sweep_sigterm", out);
  const std::vector<pid_t> trial = wait_for_trial(sweep, out);
  INFO(sweep.out() << sweep.err());
  REQUIRE(trial.size() == 2);
  kill(sweep.pid, SIGTERM);
  const int rc = ts_test::wait_exit(sweep, 120);
  INFO(sweep.out() << sweep.err());
  CHECK(rc == 128 + SIGTERM);
  CHECK_THAT(sweep.err(), Catch::Contains("threadsplit sweep: SIGTERM: stopped during run 1 of 1"));
  CHECK(ts_test::wait_until([&] { return all_gone(trial); }, 10));
  kill_all(trial);
  const std::string log = ts_test::read_text(out + "/trials/p0_r0.log");
  INFO(log);
  CHECK_THAT(log, Catch::Contains("threadsplit: SIGTERM: stopping after step"));
  CHECK(ts::read_json_file(out + "/trials/p0_r0.json")["status"].str() == "interrupted");
  CHECK_FALSE(fs::exists(out + "/sweep.csv"));
}

TEST_CASE("a SIGTERM after some of a sweep's runs keeps them: a partial sweep.csv and sweep.json, "
          "marked so, and exit 143",
          "[integration][signals][sweep]") {
  const std::string out = fresh_dir("sweep_partial");
  const ts::CoreSet mine = ts::CoreSet::of_this_process();
  // seed_cnn's run is 3 steps; tf_tutorial_cnn's is long, and the signal lands in it.
  ts_test::Process sweep = ts_test::start(
      "sweep_partial", {THREADSPLIT_BIN, "sweep", "--data", ts_test::test_data_dir(), "--worker-bin",
                        THREADSPLIT_WORKER_BIN, "--out", out, "--models", "seed_cnn,tf_tutorial_cnn",
                        "--steps", "seed_cnn=3,tf_tutorial_cnn=4000", "--warmup-steps", "1", "--repeats",
                        "1", "--batch", "32", "--batch-modes", "global", "--cores",
                        std::to_string(mine.cores().front()), "--trial-timeout", "600"});
  std::vector<pid_t> pids;
  REQUIRE(ts_test::wait_until(
      [&] {
        pids = ts_test::worker_pids(ts_test::read_text(out + "/trials/p1_r0.log"));
        return (pids.size() == 1 && pids[0] > 0) || ts_test::process_gone(sweep.pid);
      },
      120));
  REQUIRE(!ts_test::process_gone(sweep.pid));
  kill(sweep.pid, SIGTERM);
  const int rc = ts_test::wait_exit(sweep, 120);
  INFO(sweep.out() << sweep.err());
  CHECK(rc == 128 + SIGTERM);
  CHECK_THAT(sweep.err(), Catch::Contains("threadsplit sweep: SIGTERM: stopped during run 2 of 2") &&
                              Catch::Contains("1 run(s) done") && Catch::Contains("written as a partial sweep"));
  CHECK_THAT(sweep.out(), Catch::Contains("(PARTIAL: stopped by SIGTERM during run 2 of 2: a partial sweep of 1 runs)"));
  const ts::JsonNode j = ts::read_json_file(out + "/sweep.json");
  CHECK(j["sweep"]["partial"].boolean());
  REQUIRE(j["points"].size() == 2);
  CHECK(j["points"][0]["model"].str() == "seed_cnn");
  CHECK(j["points"][0]["repeats_ok"].num() == 1);
  CHECK(j["points"][1]["repeats_ok"].num() == 0);  // the run in flight is left out
  CHECK(fs::exists(out + "/sweep.csv"));
  CHECK(ts_test::wait_until([&] { return all_gone(pids); }, 10));
  kill_all(pids);
}

TEST_CASE("a sweep trial coordinator and its worker die when the sweep is killed with SIGKILL",
          "[integration][signals][sweep]") {
  const std::string out = fresh_dir("sweep_sigkill");
  ts_test::Process sweep = start_long_sweep("sweep_sigkill", out);
  const std::vector<pid_t> trial = wait_for_trial(sweep, out);
  INFO(sweep.out() << sweep.err());
  REQUIRE(trial.size() == 2);
  kill(sweep.pid, SIGKILL);
  CHECK(ts_test::wait_exit(sweep, 30) == 128 + SIGKILL);
  CHECK(ts_test::wait_until([&] { return all_gone(trial); }, 10));
  kill_all(trial);
}

TEST_CASE("a SIGTERM during --autotune is passed on to the trial in flight, and the run exits 143 "
          "before training, leaving no trial or worker behind",
          "[integration][signals][sweep]") {
  ts_test::Process c = ts_test::start(
      "autotune_signal", ts_test::coordinator_args({"--autotune", "--autotune-steps", "4000",
                                                    "--autotune-rounds", "2", "--batch", "32",
                                                    "--steps", "4", "--eval-every", "0"}));
  // A trial coordinator with its workers: the signal reaches it in training.
  std::vector<pid_t> trial;
  ts_test::wait_until(
      [&] {
        const std::vector<pid_t> kids = children_of(c.pid);
        trial = kids;
        for (pid_t k : kids)
          for (pid_t w : children_of(k)) trial.push_back(w);
        return (kids.size() == 1 && trial.size() > 1) || ts_test::process_gone(c.pid);
      },
      120);
  REQUIRE(trial.size() > 1);
  kill(c.pid, SIGTERM);
  const int rc = ts_test::wait_exit(c, 120);
  INFO(c.out() << c.err());
  CHECK(rc == 128 + SIGTERM);
  CHECK_THAT(c.err(), Catch::Contains("threadsplit: SIGTERM: --autotune stopped before training"));
  CHECK(c.out().find("--autotune chose") == std::string::npos);
  CHECK(ts_test::wait_until([&] { return all_gone(trial); }, 10));
  kill_all(trial);
}

TEST_CASE("under nohup a SIGHUP is ignored and the run goes on, and a SIGTERM still stops it",
          "[integration][signals]") {
  if (access("/usr/bin/nohup", X_OK) != 0) {
    ts_test::skip_test("/usr/bin/nohup is missing");
    return;
  }
  const std::string dir = fresh_dir("nohup_hup");
  const std::string save = dir + "/final.ckpt";
  // nohup sets SIGHUP to ignored and execs the coordinator (same pid).
  std::vector<std::string> argv =
      ts_test::coordinator_args(with(kTwoWorkers, {"--steps", "100000", "--save", save}));
  argv.insert(argv.begin(), "/usr/bin/nohup");
  ts_test::Process c = ts_test::start("nohup_hup", argv);
  const std::vector<pid_t> pids = wait_for_workers([&] { return c.out(); }, 2);
  REQUIRE(pids.size() == 2);
  kill(c.pid, SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  CHECK_FALSE(ts_test::process_gone(c.pid));  // still training
  kill(c.pid, SIGTERM);
  const int rc = ts_test::wait_exit(c, 120);
  INFO(c.out() << c.err());
  CHECK(rc == 128 + SIGTERM);
  CHECK_THAT(c.err(), !Catch::Contains("SIGHUP") && Catch::Contains("threadsplit: SIGTERM: stopping after step"));
  CHECK(ts_test::wait_until([&] { return all_gone(pids); }, 10));
  kill_all(pids);
  CHECK_NOTHROW(load(save));
}
