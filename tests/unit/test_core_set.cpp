#include <unistd.h>

#include <catch2/catch.hpp>
#include <stdexcept>

#include "core_set.h"

using ts::CoreSet;

TEST_CASE("core lists parse single cores and ranges in the given order", "[core_set]") {
  CHECK(CoreSet::parse("0-3,8,10-11").cores() == std::vector<int>{0, 1, 2, 3, 8, 10, 11});
  CHECK(CoreSet::parse("5").cores() == std::vector<int>{5});
  CHECK(CoreSet::parse("4,0-1").cores() == std::vector<int>{4, 0, 1});
  CHECK(CoreSet::parse("7-7").cores() == std::vector<int>{7});
}

TEST_CASE("bad core lists are refused with a message naming the problem", "[core_set]") {
  auto message_of = [](const std::string& text) {
    try {
      CoreSet::parse(text);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  CHECK_THAT(message_of(""), Catch::Contains("empty"));
  CHECK_THAT(message_of("0,,2"), Catch::Contains("empty item"));
  CHECK_THAT(message_of("0,"), Catch::Contains("empty item"));
  CHECK_THAT(message_of("a-3"), Catch::Contains("'a' is not a core number"));
  CHECK_THAT(message_of("1-"), Catch::Contains("is not a core number"));
  CHECK_THAT(message_of("-1"), Catch::Contains("is not a core number"));
  CHECK_THAT(message_of("3-1"), Catch::Contains("runs backwards"));
  CHECK_THAT(message_of("0-3,2"), Catch::Contains("core 2 twice"));
  CHECK_THAT(message_of("0 ,1"), Catch::Contains("is not a core number"));
  CHECK_THAT(message_of("99999999"), Catch::Contains("out of range"));
}

TEST_CASE("core lists format back to the compact form", "[core_set]") {
  CHECK(CoreSet::parse("0-3,8,10-11").to_string() == "0-3,8,10-11");
  CHECK(CoreSet({3, 1, 2}).to_string() == "3,1-2");
  CHECK(CoreSet(std::vector<int>{}).to_string().empty());
  CHECK(CoreSet({0, 2, 3}).omp_places() == "{0},{2},{3}");
  for (const char* s : {"0", "0-1", "0,2,4", "1-3,5-7,9"})
    CHECK(CoreSet::parse(s).to_string() == s);
}

TEST_CASE("core sets unite without repeating a core", "[core_set]") {
  CHECK(CoreSet::united(CoreSet::parse("3,1"), CoreSet::parse("1-2")).cores() ==
        std::vector<int>{3, 1, 2});
  CHECK(CoreSet::united(CoreSet(), CoreSet::parse("0")).cores() == std::vector<int>{0});
}

TEST_CASE("worker r gets cores r*T to (r+1)*T-1 and wraps when oversubscribed", "[core_set]") {
  const CoreSet cores = CoreSet::parse("0-3,8,10-11");
  CHECK(cores.slice(0, 2).cores() == std::vector<int>{0, 1});
  CHECK(cores.slice(1, 2).cores() == std::vector<int>{2, 3});
  CHECK(cores.slice(2, 2).cores() == std::vector<int>{8, 10});
  CHECK(cores.slice(3, 2).cores() == std::vector<int>{11, 0});  // wrap: shares core 0
  const CoreSet two = CoreSet::parse("0-1");
  CHECK(two.slice(0, 4).cores() == std::vector<int>{0, 1});  // each core once
  CHECK_THROWS_AS(two.slice(-1, 1), std::invalid_argument);
  CHECK_THROWS_AS(CoreSet().slice(0, 1), std::invalid_argument);
}

TEST_CASE("this process's cores agree with its /proc Cpus_allowed_list", "[core_set]") {
  const CoreSet mine = CoreSet::of_this_process();
  REQUIRE(!mine.empty());
  CHECK(CoreSet::of_process(getpid()) == mine);
  CHECK(CoreSet::of_process_threads(getpid()) == mine);
  CHECK_THROWS_AS(CoreSet::of_process_threads(-5), std::runtime_error);
  CHECK_THROWS_AS(CoreSet::of_process(-5), std::runtime_error);
}
