// Records: typed fields, and the JSON line round trip that the suite worker and the JSON export
// use.
#include "suites/results/run_record.h"

#include <gtest/gtest.h>

#include <cmath>

#include "runtime/error.h"

namespace longseq {
namespace {

TEST(RunRecord, SetKeepsFirstOrderAndReplaces) {
  RunRecord record;
  record.set("mixer", std::string("flash"));
  record.set("seq", std::int64_t{4096});
  record.set("mixer", std::string("linear"));
  ASSERT_EQ(record.fields().size(), 2u);
  EXPECT_EQ(record.fields()[0].first, "mixer");
  EXPECT_EQ(record.text("mixer"), "linear");
  EXPECT_EQ(record.integer("seq"), 4096);
  EXPECT_DOUBLE_EQ(record.number("seq"), 4096.0);
  EXPECT_THROW(static_cast<void>(record.text("seq")), Error);
  EXPECT_THROW(static_cast<void>(record.number("absent")), Error);
}

TEST(RunRecord, JsonRoundTripKeepsTypesAndBits) {
  RunRecord record;
  record.set("message", std::string("quote \" backslash \\ newline \n tab \t"));
  record.set("median_s", 0.1 + 0.2);
  record.set("bytes", std::int64_t{-1234567890123});
  record.set("tiny", 1e-300);
  record.set("nan", std::nan(""));
  const std::string line = record_to_json(record);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const RunRecord back = record_from_json(line, "test");
  EXPECT_EQ(back.text("message"), record.text("message"));
  EXPECT_EQ(back.number("median_s"), record.number("median_s"));
  EXPECT_EQ(back.integer("bytes"), -1234567890123);
  EXPECT_EQ(back.number("tiny"), 1e-300);
  EXPECT_TRUE(std::isnan(back.number("nan")));
  ASSERT_EQ(back.fields().size(), record.fields().size());
}

TEST(RunRecord, MalformedJsonIsAUserErrorNamingWhere) {
  for (const char* bad : {"", "{", "{\"a\" 1}", "{\"a\": }", "{\"a\": 1,}", "{\"a\": \"x}",
                          "{\"a\": 1} trailing", "[1]"}) {
    try {
      static_cast<void>(record_from_json(bad, "stream.jsonl:3"));
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find("stream.jsonl:3"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace longseq
