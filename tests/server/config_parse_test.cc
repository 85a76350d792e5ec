// The configuration parser in-process (ParseConfig), for the faults fuzz/config_fuzzer found; the server's
// own handling of a bad file (exit status, message) is ConfigurationTest's.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/config.h"

namespace veriface::server {
namespace {

using ::testing::HasSubstr;

TEST(ConfigParseTest, AKeyThatIsNotAPlainNameIsRefused) {
  // Found by fuzz/config_fuzzer: a complex key ("? ...") threw out of the parser and killed the process.
  for (const char* yaml : {"audit:\n  ? sink: log\n", "? [a, b]: 1\n"}) {
    SCOPED_TRACE(yaml);
    const auto config = ParseConfig(yaml, "bad.yaml", {});
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(config.status().message()), HasSubstr("is not a plain name"));
  }
}

TEST(ConfigParseTest, PrintedConfigurationReadsBackTheSame) {
  const auto config = ParseConfig("limits:\n  max_image_bytes: 1000000\n", "small.yaml", {});
  ASSERT_TRUE(config.ok()) << config.status();
  const std::string printed = ConfigToYaml(*config);
  const auto again = ParseConfig(printed, "printed.yaml", {});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(ConfigToYaml(*again), printed);
}

// A string with a line break (a quoted scalar folded over a blank line), a tab and another control character:
// --print-config must read back as the same string, not with the break folded into a space (config_fuzzer's
// find, fuzz/regressions/config_fuzzer/).
TEST(ConfigParseTest, StringsWithControlCharactersPrintAndReadBackTheSame) {
  const auto config = ParseConfig("auth:\n  api_keys_env: 'first\n\n  second\tthird'\n", "f.yaml", {});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->api_keys_env, "first\nsecond\tthird");
  const std::string printed = ConfigToYaml(*config);
  EXPECT_THAT(printed, HasSubstr("api_keys_env: \"first\\nsecond\\tthird\""));
  const auto again = ParseConfig(printed, "printed.yaml", {});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->api_keys_env, config->api_keys_env);
  EXPECT_EQ(ConfigToYaml(*again), printed);
}

TEST(ConfigParseTest, NotYamlNamesTheFile) {
  const auto config = ParseConfig("a: [1, 2\n", "broken.yaml", {});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("broken.yaml: not valid YAML"));
}

TEST(ConfigParseTest, ARetiredKeyIsRefusedWithWhatReplacesIt) {
  const auto config = ParseConfig("server:\n  max_threads: 64\n", "old.yaml", {});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("'server.max_threads' is no longer a key"));
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("limits.max_concurrent_calls"));
}

TEST(ConfigParseTest, ConcurrentCallsAreBoundedByDefaultAndConfigurable) {
  const auto defaults = ParseConfig("", "empty.yaml", {});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->service.limits.max_concurrent_calls, 16);
  const auto unbounded = ParseConfig("limits:\n  max_concurrent_calls: 0\n", "unbounded.yaml", {});
  ASSERT_TRUE(unbounded.ok()) << unbounded.status();
  EXPECT_EQ(unbounded->service.limits.max_concurrent_calls, 0);
  const auto negative = ParseConfig("limits:\n  max_concurrent_calls: -1\n", "negative.yaml", {});
  ASSERT_FALSE(negative.ok());
  EXPECT_THAT(std::string(negative.status().message()), HasSubstr("limits.max_concurrent_calls"));
}

TEST(ConfigParseTest, TheIvfIndexKeysAreReadAndRangeChecked) {
  const auto ivf =
      ParseConfig("gallery:\n  index:\n    type: ivf-int8\n    ivf_lists: 4096\n    ivf_nprobe: 512\n", "ivf.yaml", {});
  ASSERT_TRUE(ivf.ok()) << ivf.status();
  EXPECT_EQ(ivf->gallery_index.type, "ivf-int8");
  EXPECT_EQ(ivf->gallery_index.ivf_lists, 4096);
  EXPECT_EQ(ivf->gallery_index.ivf_nprobe, 512);
  EXPECT_THAT(ConfigToYaml(*ivf), HasSubstr("ivf_nprobe: 512"));
  for (const char* bad : {"ivf_lists: 0", "ivf_nprobe: -2"}) {
    SCOPED_TRACE(bad);
    const auto config = ParseConfig(std::string("gallery:\n  index:\n    ") + bad + "\n", "bad.yaml", {});
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(config.status().message()),
                HasSubstr(std::string("gallery.index.") + std::string(bad).substr(0, std::string(bad).find(':'))));
  }
}

}  // namespace
}  // namespace veriface::server
