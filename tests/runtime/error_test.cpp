#include "runtime/error.h"

#include <gtest/gtest.h>

#include <string>

namespace longseq {
namespace {

int failing_call() { return 7; }
std::string describe_code(int code) { return "code " + std::to_string(code); }

TEST(Error, CheckNamesConditionFileAndRank) {
  try {
    LONGSEQ_CHECK(1 + 1 == 3, "[test_op] sum was {}", 2);
    FAIL() << "no exception";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("[test_op] sum was 2"), std::string::npos) << message;
    EXPECT_NE(message.find("1 + 1 == 3"), std::string::npos) << message;
    EXPECT_NE(message.find("error_test.cpp"), std::string::npos) << message;
    EXPECT_NE(message.find("rank "), std::string::npos) << message;
  }
}

TEST(Error, StatusCheckNamesTheCall) {
  try {
    LONGSEQ_CHECK_STATUS(failing_call(), 0, describe_code);
    FAIL() << "no exception";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("failing_call()"), std::string::npos) << message;
    EXPECT_NE(message.find("code 7"), std::string::npos) << message;
  }
}

TEST(Error, RequireThrowsUserErrorWithExactMessage) {
  try {
    LONGSEQ_REQUIRE(false, "bench: --seq must be positive, got {}", -1);
    FAIL() << "no exception";
  } catch (const UserError& e) {
    EXPECT_STREQ(e.what(), "bench: --seq must be positive, got -1");
  }
}

}  // namespace
}  // namespace longseq
