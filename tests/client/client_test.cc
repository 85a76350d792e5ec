// The `veriface` command-line client: its pieces (mix parsing, percentiles, enrolment plans) and every
// command run as a real process against a real veriface-server.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "client/image_files.h"
#include "client/load.h"
#include "tests/server/server_process.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

TEST(ClientUnitTest, ParseMixReadsWeightsAndRefusesUnknownRpcs) {
  auto mix = client::ParseMix("verify=3,identify,embed=0");
  ASSERT_TRUE(mix.ok()) << mix.status().message();
  EXPECT_EQ(mix->size(), 2u);
  EXPECT_EQ(mix->at("verify"), 3);
  EXPECT_EQ(mix->at("identify"), 1);
  EXPECT_FALSE(client::ParseMix("verify=x").ok());
  EXPECT_THAT(std::string(client::ParseMix("enrol=1").status().message()), HasSubstr("enrol"));
  EXPECT_FALSE(client::ParseMix("embed=0").ok());
}

TEST(ClientUnitTest, PercentileIsNearestRank) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);
  EXPECT_EQ(client::Percentile(v, 50), 50);
  EXPECT_EQ(client::Percentile(v, 90), 90);
  EXPECT_EQ(client::Percentile(v, 99), 99);
  EXPECT_EQ(client::Percentile(v, 100), 100);
  std::vector<double> one{7};
  EXPECT_EQ(client::Percentile(one, 99), 7);
}

TEST(ClientUnitTest, HelpPointsToTheFirstRunGuide) {
  const CommandResult r = RunCommand({ClientBinary(), "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out,
              HasSubstr("First run, from a clone to enrolling your own photos: the README's 'First run' section"));
}

// A small LFW-layout folder: two people, two photos each (links to the shared data).
void MakeLfwSubset(const std::string& root) {
  for (const std::string person : {"Jennifer_Aniston", "Vladimir_Putin"}) {
    fs::create_directories(root + "/" + person);
    for (int n = 1; n <= 2; ++n) {
      const std::string name = fs::path(LfwImagePath(person, n)).filename().string();
      fs::create_symlink(LfwImagePath(person, n), root + "/" + person + "/" + name);
    }
  }
  std::ofstream(root + "/README.txt") << "not an image";
}

TEST(ClientUnitTest, PlanEnrollmentNamesIdentitiesAfterFolders) {
  TempDir dir;
  MakeLfwSubset(dir.File("lfw"));
  auto plan = client::PlanEnrollment({dir.File("lfw")}, "", 0);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  ASSERT_EQ(plan->size(), 4u);
  EXPECT_EQ((*plan)[0].identity_id, "Jennifer_Aniston");
  EXPECT_EQ((*plan)[3].identity_id, "Vladimir_Putin");

  plan = client::PlanEnrollment({dir.File("lfw/Vladimir_Putin/")}, "", 1);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->size(), 1u);
  EXPECT_EQ((*plan)[0].identity_id, "Vladimir_Putin");

  plan = client::PlanEnrollment({dir.File("lfw/Vladimir_Putin/Vladimir_Putin_0001.jpg")}, "putin", 0);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ((*plan)[0].identity_id, "putin");

  EXPECT_EQ(client::PlanEnrollment({dir.File("nowhere")}, "", 0).status().code(), absl::StatusCode::kNotFound);
}

class ClientTest : public SharedServerTest {
 protected:
  static CommandResult Veriface(std::vector<std::string> args) {
    args.insert(args.begin(), {ClientBinary(), "--server", server_->address()});
    return RunCommand(args);
  }
  static json Json(std::vector<std::string> args) {
    args.insert(args.begin(), "--json");
    const CommandResult r = Veriface(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  }
};

TEST_F(ClientTest, HealthAndInfo) {
  CommandResult r = Veriface({"health"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");
  r = Veriface({"info"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("128-D"));
  // The default bundle carries its recipe's measured View 2 accuracy, read out as a sentence.
  EXPECT_THAT(r.out, HasSubstr("accuracy    lfw_view2: 99."));
  EXPECT_THAT(r.out, HasSubstr(" over 6000 pairs, AUC "));
  const json info = Json({"info"});
  EXPECT_EQ(info["embedding_dim"], 128);
  EXPECT_FALSE(info["model_id"].get<std::string>().empty());
  EXPECT_GT(info["accuracy"]["lfw_view2"]["mean_accuracy"].get<double>(), 0.99);

  // Nothing listens on port 1: the client says so and fails.
  r = RunCommand({ClientBinary(), "--server", "127.0.0.1:1", "--timeout", "5", "health"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE"));
}

TEST_F(ClientTest, EnrollAFolderThenVerifyIdentifyListGetDelete) {
  const std::string lfw = dir_->File("subset");
  MakeLfwSubset(lfw);
  CommandResult r = Veriface({"enroll", lfw, "--progress"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("enrolled 4 image(s) into 2 identities"));
  EXPECT_THAT(r.err, HasSubstr("4/4 images"));  // the progress bar's last state

  const json list = Json({"list"});
  ASSERT_TRUE(list.contains("identities"));
  std::vector<std::string> ids;
  for (const auto& i : list["identities"]) ids.push_back(i["identity_id"]);
  EXPECT_EQ(ids, (std::vector<std::string>{"Jennifer_Aniston", "Vladimir_Putin"}));

  const json same = Json({"verify", LfwImagePath("Vladimir_Putin", 3), LfwImagePath("Vladimir_Putin", 4)});
  EXPECT_EQ(same["match"], true);
  const json against = Json({"verify", LfwImagePath("Vladimir_Putin", 5), "id:Jennifer_Aniston"});
  EXPECT_EQ(against["match"], false);
  EXPECT_FALSE(against["template_id_b"].get<std::string>().empty());

  r = Veriface({"identify", LfwImagePath("Jennifer_Aniston", 3), "--face", "central"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(" 1. Jennifer_Aniston"));
  const json found = Json({"identify", LfwImagePath("Jennifer_Aniston", 3), "--face", "central"});
  EXPECT_EQ(found["matches"][0]["identity_id"], "Jennifer_Aniston");

  const json embedded = Json({"embed", LfwImagePath("Jennifer_Aniston", 1)});
  ASSERT_GE(embedded["faces"].size(), 1u);
  EXPECT_EQ(embedded["faces"][0]["embedding"].size(), 128u);

  r = Veriface({"get", "Vladimir_Putin"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("2 template(s)"));
  r = Veriface({"delete", "Vladimir_Putin"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("deleted Vladimir_Putin (2 template(s))"));
  r = Veriface({"get", "Vladimir_Putin"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
}

TEST_F(ClientTest, ErrorsAreReadableAndExitNonZero) {
  const std::string text = dir_->File("notes.txt");
  std::ofstream(text) << "not an image at all";
  CommandResult r = Veriface({"embed", text});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT"));
  r = Veriface({"verify", dir_->File("missing.jpg"), LfwImagePath("Vladimir_Putin", 1)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("missing.jpg"));
  r = Veriface({"enroll", "--id", "text", text});
  EXPECT_NE(r.exit_code, 0);
  r = Veriface({"frobnicate"});
  EXPECT_NE(r.exit_code, 0);
}

TEST_F(ClientTest, LoadReportsThroughputAndPercentiles) {
  const json report = Json(
      {"load", LfwDir() + "/Colin_Powell", "--max-images", "6", "--mix", "verify=1,embed=1", "-c", "2", "-n", "8"});
  EXPECT_EQ(report["calls"], 8);
  EXPECT_EQ(report["ok"], 8);
  EXPECT_GT(report["throughput_per_s"].get<double>(), 0);
  const auto& latency = report["latency"];
  EXPECT_LE(latency["p50_ms"].get<double>(), latency["p90_ms"].get<double>());
  EXPECT_LE(latency["p90_ms"].get<double>(), latency["p99_ms"].get<double>());
  EXPECT_EQ(report["by_rpc"]["verify"]["calls"], 4);
  EXPECT_EQ(report["by_rpc"]["embed"]["calls"], 4);

  const CommandResult r = Veriface({"load", LfwDir() + "/Colin_Powell", "--max-images", "2", "-n", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("calls/s"));
  EXPECT_THAT(r.out, HasSubstr("p99 ms"));
}

}  // namespace
}  // namespace veriface::testing
