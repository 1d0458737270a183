// The pure parts of the door (docs/reliability.md, "Before authentication") and of the smaller
// items beside it: echoes cut short, the token before anything else, bounded Hello fields,
// results before their deal, the receive limit, launcher ranks, the data fingerprint, labels
// re-checked at use, temporaries never written through a planted name, and TLS variables the
// launcher owns.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../../worker/worker_flags.h"
#include "atomic_file.h"
#include "augment.h"
#include "cifar10.h"
#include "core_set.h"
#include "grpc_settings.h"
#include "json_io.h"
#include "run_report.h"
#include "synthetic_cifar10.h"
#include "wire_checks.h"
#include "worker_launcher.h"

namespace fs = std::filesystem;
using Catch::Contains;

namespace {

std::string door_dir(const std::string& name) {
  const std::string d = std::string(TEST_TMP_DIR) + "/door/" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

threadsplit::Hello good_hello(const std::string& token) {
  threadsplit::Hello h;
  h.set_protocol_version(ts::kProtocolVersion);
  h.set_run_token(token);
  h.set_rank(-1);
  h.mutable_versions()->set_threadsplit(ts::threadsplit_version());
  h.mutable_versions()->set_networks(ts::networks_fingerprint());
  return h;
}

}  // namespace

TEST_CASE("echo keeps a short string, cuts a long one to 64 bytes with its length, and hides "
          "control bytes", "[door]") {
  CHECK(ts::echo("abc") == "abc");
  CHECK(ts::echo(std::string(64, 'a')) == std::string(64, 'a'));
  CHECK(ts::echo(std::string(1 << 20, 'a')) == std::string(64, 'a') + "... (1048576 bytes)");
  CHECK(ts::echo("a\nb\x1b[31m\xff") == "a?b?[31m?");
}

TEST_CASE("the token is checked before anything else in a Hello, and nothing of a stranger's Hello "
          "is echoed", "[door]") {
  threadsplit::Hello h = good_hello("the-token");
  CHECK(ts::check_hello_token(h, "the-token").empty());
  h.set_run_token("the-tokeX");
  CHECK(ts::check_hello_token(h, "the-token") == "wrong run token (THREADSPLIT_TOKEN must be the coordinator's)");
  h.set_run_token("");
  CHECK_FALSE(ts::check_hello_token(h, "the-token").empty());
  // A wrong token with an absurd version: the refusal names the token only.
  h.set_run_token(std::string(300 << 10, 't'));
  h.mutable_versions()->set_threadsplit(std::string(300 << 10, 'v'));
  const std::string why = ts::check_hello_token(h, "the-token");
  CHECK_THAT(why, Contains("wrong run token"));
  CHECK(why.size() < 100);
}

TEST_CASE("a Hello's strings and lists are bounded, and an oversized one is named with a cut echo",
          "[door]") {
  threadsplit::Hello h = good_hello("t");
  CHECK(ts::check_hello_message(h, ts::kProtocolVersion).empty());
  h.mutable_binding()->set_hostname(std::string(ts::kHelloStringBytes, 'h'));
  CHECK(ts::check_hello_message(h, ts::kProtocolVersion).empty());
  h.mutable_binding()->set_hostname(std::string(200 << 10, 'h'));
  const std::string why = ts::check_hello_message(h, ts::kProtocolVersion);
  CHECK_THAT(why, Contains("a Hello whose hostname is 204800 bytes (at most 256)") &&
                      Contains("... (204800 bytes)"));
  CHECK(why.size() < 200);
  h.mutable_binding()->set_hostname("host");
  h.mutable_versions()->set_threadsplit(std::string(1000, 'v'));
  CHECK_THAT(ts::check_hello_message(h, ts::kProtocolVersion), Contains("threadsplit version is 1000 bytes"));
  h.mutable_versions()->set_threadsplit("0.0.0-other-" + std::string(100, 'x'));
  const std::string other = ts::check_hello_message(h, ts::kProtocolVersion);
  CHECK_THAT(other, Contains("the worker is threadsplit 0.0.0-other-") && Contains("... (112 bytes)"));
  h.mutable_versions()->set_threadsplit(ts::threadsplit_version());
  // A legitimate worker on thousands of cores: long places and core lists are fine.
  std::string places;
  for (int c = 0; c < 4096; ++c) places += (c ? ",{" : "{") + std::to_string(c) + "}";
  h.mutable_binding()->set_omp_places(places);
  for (int c = 0; c < 4096; ++c) h.mutable_binding()->add_cores(c);
  h.mutable_binding()->add_omp_thread_cores("0-4095");
  CHECK(ts::check_hello_message(h, ts::kProtocolVersion).empty());
  for (int i = 4096; i <= ts::kHelloListEntries; ++i) h.mutable_binding()->add_cores(i);
  CHECK_THAT(ts::check_hello_message(h, ts::kProtocolVersion), Contains("listing 65537 cores or threads"));
  h.mutable_binding()->clear_cores();
  h.mutable_binding()->add_omp_thread_cores(std::string(70000, '1'));
  CHECK_THAT(ts::check_hello_message(h, ts::kProtocolVersion), Contains("core list of 70000 bytes"));
  h.mutable_binding()->clear_omp_thread_cores();
  h.mutable_binding()->set_omp_places(std::string(70000, '{'));
  CHECK_THAT(ts::check_hello_message(h, ts::kProtocolVersion), Contains("OpenMP places are 70000 bytes"));
  h.mutable_binding()->set_omp_places("{0}");
  for (int i = 0; i < 20; ++i) h.mutable_binding()->add_omp_thread_cores(std::string(60000, '1'));
  CHECK_THAT(ts::check_hello_message(h, ts::kProtocolVersion), Contains("bytes (at most 1048576)"));
}

TEST_CASE("results before their deal or request are refused naming what arrived, and Goodbye is not",
          "[door]") {
  threadsplit::WorkerMessage step;
  step.mutable_step()->set_step(3);
  CHECK(ts::check_message_order(step, false, false) == "a step result (step 3) before this worker was dealt any step");
  CHECK(ts::check_message_order(step, true, false).empty());
  threadsplit::WorkerMessage eval;
  eval.mutable_eval()->set_round(2);
  CHECK(ts::check_message_order(eval, true, false) ==
        "an evaluation result (round 2) before this worker was asked to evaluate");
  CHECK(ts::check_message_order(eval, false, true).empty());
  threadsplit::WorkerMessage bye;
  bye.mutable_goodbye();
  CHECK(ts::check_message_order(bye, false, false).empty());
  CHECK(std::string(ts::worker_message_kind(step)) == "a step result");
  CHECK(std::string(ts::worker_message_kind(threadsplit::WorkerMessage())) == "an empty message");
}

TEST_CASE("the coordinator's receive limit is a gradient plus 1 MiB, never above the old 256 MiB",
          "[door]") {
  CHECK(ts::coordinator_receive_limit(0) == 1 << 20);
  CHECK(ts::coordinator_receive_limit(20042) == 20042 * 4 + (1 << 20));
  CHECK(ts::coordinator_receive_limit(size_t(1) << 40) == ts::kMaxMessageBytes);
}

TEST_CASE("a launcher's rank variable is a whole number in 0..2147483647, never wrapped", "[door]") {
  CHECK(ts::parse_rank_variable("SLURM_PROCID", "0") == 0);
  CHECK(ts::parse_rank_variable("SLURM_PROCID", "000") == 0);
  CHECK(ts::parse_rank_variable("SLURM_PROCID", "17") == 17);
  CHECK(ts::parse_rank_variable("SLURM_PROCID", "2147483647") == 2147483647);
  for (const char* bad : {"4294967297", "2147483648", "99999999999999999999", "-1", "", "1x", " 1", "+1", "0x10"}) {
    INFO(bad);
    CHECK_THROWS_WITH(ts::parse_rank_variable("OMPI_COMM_WORLD_RANK", bad),
                      Contains("OMPI_COMM_WORLD_RANK must be a rank in 0..2147483647"));
  }
}

TEST_CASE("the data fingerprint is equal for equal copies and differs when one label changed",
          "[door][cifar10]") {
  const std::string a = door_dir("fingerprint_a");
  ts::write_synthetic_cifar10(a, 11);
  const std::string b = door_dir("fingerprint_b");
  for (const auto& e : fs::directory_iterator(a)) fs::copy_file(e.path(), b + "/" + e.path().filename().string());
  const std::string fa = ts::Cifar10::open(a).fingerprint();
  CHECK(fa.size() == 8);
  CHECK(ts::Cifar10::open(b).fingerprint() == fa);
  {
    std::fstream f(b + "/data_batch_4.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(3073 * 9999);
    char label = 0;
    f.read(&label, 1);
    label = char((label + 1) % 10);
    f.seekp(3073 * 9999);
    f.write(&label, 1);
  }
  CHECK(ts::Cifar10::open(b).fingerprint() != fa);
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST_CASE("a label rewritten in place after open is refused at use with a clear error, never read "
          "out of bounds", "[door][cifar10]") {
  const std::string d = door_dir("rewritten");
  ts::write_synthetic_cifar10(d, 12);
  const ts::Cifar10 data = ts::Cifar10::open(d);
  // The mapping is shared: a write through the file shows through it.
  const int fd = ::open((d + "/data_batch_2.bin").c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  const unsigned char bad = 200;
  REQUIRE(::pwrite(fd, &bad, 1, off_t(3073) * 5) == 1);
  ::close(fd);
  const int32_t idx[] = {0, 10005};  // record 5 of data_batch_2
  std::vector<float> images(2 * ts::kCifarImageBytes);
  std::vector<int32_t> labels(2);
  CHECK_THROWS_AS(ts::assemble_batch(data, ts::Set::kTrain, idx, 2, ts::Augment::kNone, 1, 0, images.data(),
                                     labels.data()),
                  ts::DataError);
  CHECK_THROWS_WITH(ts::assemble_batch(data, ts::Set::kTrain, idx, 2, ts::Augment::kNone, 1, 0, images.data(),
                                       labels.data()),
                    Contains("data_batch_2.bin: record 5 now has label 200, not 0-9") &&
                        Contains("changed while this run had it open"));
  fs::remove_all(d);
}

TEST_CASE("a temporary is never an existing file or written through a planted symlink", "[door]") {
  const std::string d = door_dir("temporaries");
  const std::string target = d + "/elsewhere";
  { std::ofstream(target) << "untouched"; }
  const std::string path = d + "/report.json";
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  fs::create_symlink(target, tmp);
  // The planted name is stepped around (a random suffix), never written through.
  CHECK_NOTHROW(ts::write_file_atomically(path, std::string("new")));
  std::ifstream in(target);
  std::string text;
  std::getline(in, text);
  CHECK(text == "untouched");
  CHECK(fs::is_symlink(tmp));
  CHECK(ts::read_whole_file(path) == "new");
  fs::remove(tmp);
  ts::write_file_atomically(path, std::string("newer"));
  CHECK(ts::read_whole_file(path) == "newer");
  size_t left = 0;  // no temporary stays behind
  for (const auto& e : fs::directory_iterator(d)) left += e.path().filename().string().find(".tmp.") != std::string::npos;
  CHECK(left == 0);
  fs::remove_all(d);
}

TEST_CASE("inherited THREADSPLIT_TLS_* never reach a spawned worker, and the launcher's own do", "[door][launcher]") {
  setenv("THREADSPLIT_TLS_CA", "/inherited/ca.pem", 1);
  setenv("THREADSPLIT_TLS_CERT", "/inherited/cert.pem", 1);
  setenv("THREADSPLIT_TLS_KEY", "/inherited/key.pem", 1);
  ts::WorkerLaunch l;
  l.cores = ts::CoreSet::parse("0");
  l.omp_threads = 1;
  std::vector<std::string> tls;
  for (const auto& e : ts::worker_environment(l))
    if (e.rfind("THREADSPLIT_TLS_", 0) == 0) tls.push_back(e);
  CHECK(tls.empty());
  l.extra_env = {"THREADSPLIT_TLS_CA=/coordinator/ca.pem"};
  tls.clear();
  for (const auto& e : ts::worker_environment(l))
    if (e.rfind("THREADSPLIT_TLS_", 0) == 0) tls.push_back(e);
  CHECK(tls == std::vector<std::string>{"THREADSPLIT_TLS_CA=/coordinator/ca.pem"});
  unsetenv("THREADSPLIT_TLS_CA");
  unsetenv("THREADSPLIT_TLS_CERT");
  unsetenv("THREADSPLIT_TLS_KEY");
}

TEST_CASE("the report keeps the refusals it was given and one line counting the rest", "[door][report]") {
  ts::RunSetup s;
  s.run_id = "r";
  s.world_size = 1;
  ts::ReportInputs in;
  in.setup = &s;
  in.refusals = std::vector<std::string>(20, "refused a worker");
  in.refusals_total = 52;
  const std::string path = door_dir("report") + "/report.json";
  ts::write_run_report(path, in);
  const ts::JsonNode j = ts::read_json_file(path);
  const std::vector<ts::JsonNode> refused = j["refused_workers"].items();
  REQUIRE(refused.size() == 21);
  CHECK(refused[19].str() == "refused a worker");
  CHECK(refused[20].str() == "and 32 more refusals (52 in all)");
  // No more than were kept: no counting line.
  in.refusals_total = 20;
  ts::write_run_report(path, in);
  CHECK(ts::read_json_file(path)["refused_workers"].size() == 20);
}
