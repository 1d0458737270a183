// The CIFAR-10 reader: real data where the box has it, synthetic data always, and damaged
// copies of the synthetic files for every check open() makes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cifar10.h"
#include "skip.h"
#include "synthetic_cifar10.h"

namespace fs = std::filesystem;
using ts::Cifar10;
using ts::DataError;
using ts::Set;

namespace {

const std::string kSyntheticDir = std::string(TEST_TMP_DIR) + "/cifar10_reader/synthetic";

const std::string& synthetic_dir() {
  static const bool written = [] {
    ts::ensure_synthetic_cifar10(kSyntheticDir, 7);
    return true;
  }();
  (void)written;
  return kSyntheticDir;
}

bool real_data_present() {
  return fs::exists(std::string(CIFAR10_TEST_DIR) + "/data_batch_1.bin");
}

// Record `rec` of `file` read with plain stdio, independent of the reader under test.
std::vector<uint8_t> read_record(const std::string& path, int rec) {
  std::vector<uint8_t> r(ts::kCifarRecordBytes);
  std::ifstream in(path, std::ios::binary);
  in.seekg(std::streamoff(rec) * ts::kCifarRecordBytes);
  in.read(reinterpret_cast<char*>(r.data()), std::streamsize(r.size()));
  REQUIRE(in.good());
  return r;
}

// Checks image() and label() against the files for records that cross file boundaries.
void check_index_convention(const Cifar10& c, const std::string& dir) {
  struct Probe { Set set; int index; const char* file; int rec; };
  const Probe probes[] = {
      {Set::kTrain, 0, "data_batch_1.bin", 0},      {Set::kTrain, 9999, "data_batch_1.bin", 9999},
      {Set::kTrain, 10000, "data_batch_2.bin", 0},  {Set::kTrain, 23456, "data_batch_3.bin", 3456},
      {Set::kTrain, 49999, "data_batch_5.bin", 9999}, {Set::kTest, 0, "test_batch.bin", 0},
      {Set::kTest, 9999, "test_batch.bin", 9999}};
  for (const Probe& p : probes) {
    INFO(ts::set_name(p.set) << " record " << p.index);
    const std::vector<uint8_t> r = read_record(dir + "/" + p.file, p.rec);
    CHECK(c.label(p.set, p.index) == r[0]);
    CHECK(std::equal(r.begin() + 1, r.end(), c.image(p.set, p.index)));
  }
}

// A fresh copy of the synthetic set in its own directory: `own` is a real copy, to damage;
// the other files are symlinks to the originals (never written through).
std::string copy_synthetic(const std::string& name, const std::string& own) {
  const std::string dir = std::string(TEST_TMP_DIR) + "/cifar10_reader/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (int f = 0; f < ts::kCifarFiles; ++f) {
    const std::string file = ts::cifar10_file_name(f);
    const fs::path src = fs::absolute(synthetic_dir() + "/" + file);
    if (file == own) {
      fs::copy_file(src, dir + "/" + file);
    } else {
      fs::create_symlink(src, dir + "/" + file);
    }
  }
  return dir;
}

std::string open_error(const std::string& dir) {
  try {
    Cifar10::open(dir);
  } catch (const DataError& e) {
    return e.what();
  }
  FAIL("Cifar10::open(" << dir << ") accepted damaged data");
  return {};
}

}  // namespace

TEST_CASE("real CIFAR-10 opens with its known labels and record order", "[data]") {
  if (!real_data_present()) {
    ts_test::skip_test("no real CIFAR-10 at " CIFAR10_TEST_DIR " (the CMake cache variable CIFAR10_TEST_DIR)");
    return;
  }
  const Cifar10 c = Cifar10::open(CIFAR10_TEST_DIR);
  CHECK(c.size(Set::kTrain) == 50000);
  CHECK(c.size(Set::kTest) == 10000);
  CHECK(c.label(Set::kTrain, 0) == 6);  // data_batch_1 record 0: frog
  CHECK(c.label(Set::kTest, 0) == 3);   // test_batch record 0: cat
  CHECK_FALSE(c.synthetic());
  check_index_convention(c, CIFAR10_TEST_DIR);
  // CIFAR-10 is balanced: 5000 of each class in training, 1000 in test.
  std::vector<int> train(10), test(10);
  for (int i = 0; i < 50000; ++i) ++train[c.label(Set::kTrain, i)];
  for (int i = 0; i < 10000; ++i) ++test[c.label(Set::kTest, i)];
  CHECK(train == std::vector<int>(10, 5000));
  CHECK(test == std::vector<int>(10, 1000));
}

TEST_CASE("synthetic CIFAR-10 opens, follows the index convention and says it is synthetic",
          "[data]") {
  const Cifar10 c = Cifar10::open(synthetic_dir());
  CHECK(c.synthetic());
  CHECK(c.size(Set::kTrain) == 50000);
  check_index_convention(c, synthetic_dir());
  std::vector<int> counts(10);
  for (int i = 0; i < 10000; ++i) ++counts[c.label(Set::kTest, i)];
  for (int k = 0; k < 10; ++k) CHECK(counts[k] > 800);  // every class, roughly balanced
}

TEST_CASE("synthetic CIFAR-10 is deterministic in its seed", "[data]") {
  const std::string again = std::string(TEST_TMP_DIR) + "/cifar10_reader/synthetic_again";
  const std::string other = std::string(TEST_TMP_DIR) + "/cifar10_reader/synthetic_seed8";
  ts::write_synthetic_cifar10(again, 7);
  ts::write_synthetic_cifar10(other, 8);
  const Cifar10 a = Cifar10::open(synthetic_dir()), b = Cifar10::open(again),
                o = Cifar10::open(other);
  for (int i : {0, 12345, 49999}) {
    CHECK(std::equal(a.image(Set::kTrain, i), a.image(Set::kTrain, i) + 3072,
                     b.image(Set::kTrain, i)));
    CHECK_FALSE(std::equal(a.image(Set::kTrain, i), a.image(Set::kTrain, i) + 3072,
                           o.image(Set::kTrain, i)));
  }
  for (const auto& e : fs::directory_iterator(again)) {
    CHECK(e.path().string().find(".tmp") == std::string::npos);  // temporaries renamed away
  }
}

TEST_CASE("a generated set is reused only when it is whole and of the same seed", "[data]") {
  const std::string dir = std::string(TEST_TMP_DIR) + "/cifar10_reader/ensure";
  fs::remove_all(dir);
  const std::string batch = dir + "/data_batch_3.bin";
  ts::ensure_synthetic_cifar10(dir, 5);
  REQUIRE(fs::file_size(batch) == ts::kCifarFileBytes);
  // Whole and of this seed: left as it is.
  fs::last_write_time(batch, fs::file_time_type::clock::now() - std::chrono::hours(1));
  const auto stamp = fs::last_write_time(batch);
  ts::ensure_synthetic_cifar10(dir, 5);
  CHECK(fs::last_write_time(batch) == stamp);
  // Another seed: written again, and opens as that seed's set.
  ts::ensure_synthetic_cifar10(dir, 6);
  CHECK(fs::last_write_time(batch) != stamp);
  const std::string fresh = std::string(TEST_TMP_DIR) + "/cifar10_reader/ensure_seed6";
  ts::write_synthetic_cifar10(fresh, 6);
  const Cifar10 reused = Cifar10::open(dir), written = Cifar10::open(fresh);
  CHECK(std::equal(reused.image(Set::kTrain, 31234), reused.image(Set::kTrain, 31234) + ts::kCifarImageBytes,
                   written.image(Set::kTrain, 31234)));
  // A truncated file: written again.
  fs::resize_file(batch, 1000);
  ts::ensure_synthetic_cifar10(dir, 6);
  CHECK(fs::file_size(batch) == ts::kCifarFileBytes);
  // No marker (say, an interrupted first write): written again.
  fs::remove(dir + "/" + ts::kCifarSyntheticMarker);
  ts::ensure_synthetic_cifar10(dir, 6);
  CHECK(fs::exists(dir + "/" + ts::kCifarSyntheticMarker));
  CHECK_NOTHROW(Cifar10::open(dir));
}

TEST_CASE("synthetic CIFAR-10 shows the class in the pixels", "[data]") {
  // A nearest-mean classifier on each image's mean colour (minus its grey level) must beat
  // chance by far, or a short training run on this data could not show learning.
  const Cifar10 c = Cifar10::open(synthetic_dir());
  auto chroma = [&](Set s, int i, double out[3]) {
    const uint8_t* p = c.image(s, i);
    double m[3] = {0, 0, 0};
    for (int ch = 0; ch < 3; ++ch)
      for (int k = 0; k < 1024; ++k) m[ch] += p[ch * 1024 + k];
    const double grey = (m[0] + m[1] + m[2]) / 3;
    for (int ch = 0; ch < 3; ++ch) out[ch] = (m[ch] - grey) / 1024;
  };
  double mean[10][3] = {};
  int n[10] = {};
  for (int i = 0; i < 10000; ++i) {
    double x[3];
    chroma(Set::kTrain, i, x);
    const int y = c.label(Set::kTrain, i);
    for (int ch = 0; ch < 3; ++ch) mean[y][ch] += x[ch];
    ++n[y];
  }
  for (int k = 0; k < 10; ++k)
    for (int ch = 0; ch < 3; ++ch) mean[k][ch] /= n[k];
  int correct = 0;
  for (int i = 0; i < 2000; ++i) {
    double x[3];
    chroma(Set::kTest, i, x);
    int best = 0;
    double best_d = 1e30;
    for (int k = 0; k < 10; ++k) {
      double d = 0;
      for (int ch = 0; ch < 3; ++ch) d += (x[ch] - mean[k][ch]) * (x[ch] - mean[k][ch]);
      if (d < best_d) best_d = d, best = k;
    }
    correct += best == c.label(Set::kTest, i);
  }
  CHECK(correct > 2000 * 0.6);
}

TEST_CASE("Cifar10::open also finds the files in dir/cifar-10-batches-bin", "[data]") {
  const std::string parent = std::string(TEST_TMP_DIR) + "/cifar10_reader/parent";
  ts::ensure_synthetic_cifar10(parent + "/cifar-10-batches-bin", 7);
  const Cifar10 c = Cifar10::open(parent + "/");
  CHECK(c.dir() == parent + "/cifar-10-batches-bin");
  CHECK(c.label(Set::kTest, 5) ==
        Cifar10::open(synthetic_dir()).label(Set::kTest, 5));
}

TEST_CASE("Cifar10::open rejects damaged data, naming the file and the fix", "[data]") {
  SECTION("truncated file") {
    const std::string dir = copy_synthetic("truncated", "data_batch_3.bin");
    fs::resize_file(dir + "/data_batch_3.bin", 30729999);
    const std::string msg = open_error(dir);
    CHECK_THAT(msg, Catch::Contains(dir + "/data_batch_3.bin"));
    CHECK_THAT(msg, Catch::Contains("30729999 bytes"));
    CHECK_THAT(msg, Catch::Contains("truncated"));
    CHECK_THAT(msg, Catch::Contains("scripts/get_cifar10.sh"));
  }
  SECTION("whole records, but not 10000 of them") {
    const std::string dir = copy_synthetic("extra_record", "test_batch.bin");
    fs::resize_file(dir + "/test_batch.bin", 10001 * 3073);
    const std::string msg = open_error(dir);
    CHECK_THAT(msg, Catch::Contains(dir + "/test_batch.bin"));
    CHECK_THAT(msg, Catch::Contains("10001 records"));
  }
  SECTION("empty file") {
    const std::string dir = copy_synthetic("empty", "data_batch_1.bin");
    fs::resize_file(dir + "/data_batch_1.bin", 0);
    CHECK_THAT(open_error(dir), Catch::Contains(dir + "/data_batch_1.bin: 0 bytes"));
  }
  SECTION("a label outside 0-9") {
    const std::string dir = copy_synthetic("bad_label", "data_batch_4.bin");
    {
      std::fstream f(dir + "/data_batch_4.bin", std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(std::streamoff(1234) * 3073);
      f.put(char(12));
    }
    const std::string msg = open_error(dir);
    CHECK_THAT(msg, Catch::Contains(dir + "/data_batch_4.bin"));
    CHECK_THAT(msg, Catch::Contains("record 1234 has label 12"));
  }
  SECTION("a missing file") {
    const std::string dir = copy_synthetic("missing", "data_batch_5.bin");
    fs::remove(dir + "/data_batch_5.bin");
    const std::string msg = open_error(dir);
    CHECK_THAT(msg, Catch::Contains(dir + "/data_batch_5.bin"));
    CHECK_THAT(msg, Catch::Contains("scripts/get_cifar10.sh"));
  }
  SECTION("a directory that does not exist") {
    const std::string dir = std::string(TEST_TMP_DIR) + "/cifar10_reader/no_such_dir";
    CHECK_THAT(open_error(dir), Catch::Contains(dir + "/data_batch_1.bin"));
  }
}

TEST_CASE("the Keras validation split holds out the last 10% of training records", "[data]") {
  const ts::DataSplit s = ts::keras_validation_split();
  CHECK(s.train_begin == 0);
  CHECK(s.train_end == 45000);
  CHECK(s.val_begin == 45000);
  CHECK(s.val_end == 50000);
  CHECK(s.train_size() == 45000);
  CHECK(s.val_size() == 5000);
  const ts::DataSplit d;  // the default is the same split
  CHECK(d.train_end == 45000);
  CHECK(d.val_begin == 45000);
  CHECK(ts::keras_validation_split(0.0).val_size() == 0);
  CHECK(ts::keras_validation_split(0.25, 1000).train_end == 750);
  CHECK_THROWS_AS(ts::keras_validation_split(1.0), std::invalid_argument);
  CHECK_THROWS_AS(ts::keras_validation_split(-0.1), std::invalid_argument);
}
