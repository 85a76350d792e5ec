// The `veriface` command-line client: its pieces (mix parsing, percentiles, enrolment plans, retries)
// and every command run as a real process against a real veriface-server.

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "client/image_files.h"
#include "client/load.h"
#include "client/retry.h"
#include "tests/server/server_process.h"
#include "tests/testing/test_env.h"

namespace veriface::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ClientUnitTest, ParseMixReadsWeightsAndRefusesUnknownRpcs) {
  auto mix = client::ParseMix("verify=3,identify,embed=0");
  ASSERT_TRUE(mix.ok()) << mix.status().message();
  EXPECT_EQ(mix->size(), 2u);
  EXPECT_EQ(mix->at("verify"), 3);
  EXPECT_EQ(mix->at("identify"), 1);
  EXPECT_FALSE(client::ParseMix("verify=x").ok());
  EXPECT_THAT(std::string(client::ParseMix("enrol=1").status().message()), HasSubstr("enrol"));
  EXPECT_FALSE(client::ParseMix("embed=0").ok());
  EXPECT_TRUE(client::ParseMix("delete=1,list=2").ok());
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

TEST(ClientUnitTest, RequestIdsAreFreshHex) {
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) ids.insert(client::NewRequestId());
  EXPECT_EQ(ids.size(), 100u);
  for (const std::string& id : ids) EXPECT_THAT(id, ::testing::MatchesRegex("[0-9a-f]{32}"));
}

TEST(ClientUnitTest, OnlyUnavailableIsRetriedAndBackOffDoubles) {
  client::RetryPolicy policy;
  policy.retries = 3;
  policy.first_backoff = std::chrono::milliseconds(1);
  policy.max_backoff = std::chrono::milliseconds(3);
  EXPECT_EQ(client::Backoff(policy, 1).count(), 1);
  EXPECT_EQ(client::Backoff(policy, 2).count(), 2);
  EXPECT_EQ(client::Backoff(policy, 3).count(), 3);
  EXPECT_EQ(client::Backoff(policy, 30).count(), 3);

  // Down twice, then up: three attempts, two notices.
  int attempts = 0, notices = 0;
  grpc::Status status = client::WithRetries(
      policy, [&] { return ++attempts < 3 ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "down") : grpc::Status::OK; },
      [&](int, const grpc::Status&, std::chrono::milliseconds) { ++notices; });
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(attempts, 3);
  EXPECT_EQ(notices, 2);

  // Never up: the first attempt and `retries` more, then the last status.
  attempts = 0;
  status = client::WithRetries(policy, [&] {
    ++attempts;
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "down");
  });
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(attempts, 4);

  // Anything else would come back the same: not retried.
  attempts = 0;
  status = client::WithRetries(policy, [&] {
    ++attempts;
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no face");
  });
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(attempts, 1);
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

// A loopback TCP relay in front of a server. Its first connection is cut, unanswered, at the moment the
// server sends anything once `done()` says the write being tested has taken effect: the server did the
// work and the client never hears of it, the case that request ids are for. Anything the server sends
// before that (its HTTP/2 settings, window updates) is passed on, and so is every later connection.
class LosingRelay {
 public:
  LosingRelay(int server_port, std::function<bool()> done) : server_port_(server_port), done_(std::move(done)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address = Loopback(0);
    socklen_t size = sizeof address;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
        ::listen(listener_, 8) != 0 || ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
      ADD_FAILURE() << "the relay cannot listen on loopback";
      return;
    }
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~LosingRelay() {
    stop_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    for (std::thread& pipe : pipes_) pipe.join();
    if (listener_ >= 0) ::close(listener_);
  }
  LosingRelay(const LosingRelay&) = delete;
  LosingRelay& operator=(const LosingRelay&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  bool cut() const { return cut_; }

 private:
  static sockaddr_in Loopback(int port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    return address;
  }

  void Accept() {
    bool first = true;
    while (!stop_) {
      pollfd ready{listener_, POLLIN, 0};
      if (::poll(&ready, 1, 50) <= 0) continue;
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) continue;
      const int server = ::socket(AF_INET, SOCK_STREAM, 0);
      const sockaddr_in address = Loopback(server_port_);
      if (server < 0 || ::connect(server, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        ADD_FAILURE() << "the relay cannot reach the server on port " << server_port_;
        ::close(client);
        if (server >= 0) ::close(server);
        continue;
      }
      pipes_.emplace_back([this, client, server, first] { Pipe(client, server, first); });
      first = false;
    }
  }

  // Copies both ways until either side closes (or the cut).
  void Pipe(int client, int server, bool losing) {
    char buffer[1 << 16];
    pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    bool open = true;
    while (open && !stop_) {
      if (::poll(fds, 2, 50) <= 0) continue;
      for (int from = 0; from < 2 && open; ++from) {
        if (fds[from].revents == 0) continue;
        const ssize_t n = ::read(fds[from].fd, buffer, sizeof buffer);
        if (n <= 0 || (from == 1 && losing && done_())) {
          if (n > 0) cut_ = true;
          open = false;
          break;
        }
        // MSG_NOSIGNAL: a peer that has gone must not kill the test with SIGPIPE.
        for (ssize_t sent = 0; open && sent < n;) {
          const ssize_t m = ::send(fds[1 - from].fd, buffer + sent, static_cast<size_t>(n - sent), MSG_NOSIGNAL);
          if (m <= 0) open = false;
          sent += m;
        }
      }
    }
    ::close(client);
    ::close(server);
  }

  const int server_port_;
  const std::function<bool()> done_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> cut_{false};
  std::thread acceptor_;
  std::vector<std::thread> pipes_;  // written by the acceptor only, joined after it
};

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
  // One server on its own SQLite file: the store is named, and there is no shared store to fall behind.
  EXPECT_THAT(r.out, HasSubstr("\ngallery     sqlite store, "));
  EXPECT_THAT(r.out, Not(HasSubstr("\nsync")));
  const json info = Json({"info"});
  EXPECT_EQ(info["embedding_dim"], 128);
  EXPECT_FALSE(info["model_id"].get<std::string>().empty());
  EXPECT_GT(info["accuracy"]["lfw_view2"]["mean_accuracy"].get<double>(), 0.99);
  EXPECT_EQ(info["gallery_store"], "sqlite");
  EXPECT_EQ(info["gallery_may_be_stale"], false);

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

TEST_F(ClientTest, LoadEnrolsANewIdentityPerEnrollCall) {
  const CommandResult created = Veriface({"galleries", "create", "loaded"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const json report = Json({"--gallery", "loaded", "load", LfwDir() + "/Colin_Powell", "--max-images", "3", "--mix",
                            "enroll=1,identify=1", "-c", "2", "-n", "6"});
  EXPECT_EQ(report["ok"], 6) << report.dump();
  EXPECT_EQ(report["by_rpc"]["enroll"]["calls"], 3);
  const json listed = Json({"--gallery", "loaded", "list"});
  ASSERT_TRUE(listed.contains("identities")) << listed.dump();
  ASSERT_EQ(listed["identities"].size(), 3u) << listed.dump();
  for (const auto& identity : listed["identities"]) {
    EXPECT_THAT(identity["identity_id"].get<std::string>(), ::testing::StartsWith("load-"));
  }
}

// The mix's schedule runs in name order (delete, enroll, enroll, list): the first delete finds nothing of
// this run's to delete and lists instead; the second deletes the oldest enrolment.
TEST_F(ClientTest, LoadDeletesWhatItEnrolledAndLists) {
  const CommandResult created = Veriface({"galleries", "create", "churn"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const json report = Json({"--gallery", "churn", "load", LfwDir() + "/Colin_Powell", "--max-images", "3", "--mix",
                            "enroll=2,delete=1,list=1", "-c", "1", "-n", "8"});
  EXPECT_EQ(report["ok"], 8) << report.dump();
  EXPECT_EQ(report["by_rpc"]["enroll"]["calls"], 4) << report.dump();
  EXPECT_EQ(report["by_rpc"]["delete"]["calls"], 1) << report.dump();
  EXPECT_EQ(report["by_rpc"]["list"]["calls"], 3) << report.dump();
  const json listed = Json({"--gallery", "churn", "list"});
  ASSERT_TRUE(listed.contains("identities")) << listed.dump();
  EXPECT_EQ(listed["identities"].size(), 3u) << listed.dump();
}

// Open loop: arrivals are offered at the rate whatever the server does; each is either sent or skipped.
TEST_F(ClientTest, OpenLoopLoadOffersArrivalsAtARate) {
  const json report = Json({"load", LfwDir() + "/Colin_Powell", "--max-images", "2", "--mix", "list=1", "--rate", "40",
                            "-d", "1", "-c", "4", "--deadline", "5"});
  EXPECT_EQ(report["offered_rate_per_s"], 40.0);
  EXPECT_EQ(report["deadline_s"], 5.0);
  EXPECT_GT(report["calls"].get<int64_t>() + report["skipped"].get<int64_t>(), 0) << report.dump();
  EXPECT_EQ(report["ok"], report["calls"]) << report.dump();
  const CommandResult r =
      Veriface({"load", LfwDir() + "/Colin_Powell", "--max-images", "2", "--mix", "list", "--rate", "20", "-d", "0.5"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("open loop: 20.00 calls/s offered"));
}

TEST_F(ClientTest, GalleriesAreCreatedListedSearchedAndDeleted) {
  CommandResult r = Veriface({"galleries", "create", "shop", "--max-templates", "50"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("created gallery shop (at most 50 templates)"));
  r = Veriface({"galleries", "create", "shop"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("ALREADY_EXISTS"));

  r = Veriface({"--gallery", "shop", "enroll", "--id", "laura", LfwImagePath("Laura_Bush", 1)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("enrolled 1 image(s) into 1 identity of gallery shop"));

  // --gallery also after the subcommand; the default gallery, searched with --all, never shows her.
  r = Veriface({"identify", "--gallery", "shop", LfwImagePath("Laura_Bush", 2)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("gallery shop\n"));
  EXPECT_THAT(r.out, HasSubstr(" 1. laura "));
  EXPECT_THAT(r.out, HasSubstr("  match\n"));
  r = Veriface({"identify", "--all", LfwImagePath("Laura_Bush", 2)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("laura")));
  EXPECT_THAT(r.out, Not(HasSubstr("gallery")));
  const json against = Json({"-g", "shop", "verify", "id:laura", LfwImagePath("Laura_Bush", 3)});
  EXPECT_EQ(against["match"], true);

  // $VERIFACE_GALLERY is the same option.
  r = RunCommand({ClientBinary(), "--server", server_->address(), "list"}, {{"VERIFACE_GALLERY", "shop"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("laura "));
  EXPECT_THAT(r.out, HasSubstr("1 of 1 identities in gallery shop\n"));
  r = Veriface({"get", "laura"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));

  r = Veriface({"galleries", "list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ContainsRegex("\nshop +1 +1 +50\n"));
  EXPECT_THAT(r.out, ContainsRegex("\ndefault +[0-9]+ +[0-9]+ +[0-9]+\n"));

  r = Veriface({"galleries", "delete", "shop"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("deleted gallery shop (1 identities, 1 templates)"));
  const json galleries = Json({"galleries", "list"});
  for (const auto& gallery : galleries["galleries"]) EXPECT_NE(gallery["name"], "shop");
  r = Veriface({"--gallery", "shop", "identify", LfwImagePath("Laura_Bush", 2)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
  r = Veriface({"galleries", "delete", "default"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("FAILED_PRECONDITION"));
}

TEST_F(ClientTest, QualityIsShownAndTheGalleryReportIsPrintedAndDrawn) {
  CommandResult r = Veriface({"embed", "--no-embeddings", LfwImagePath("Colin_Powell", 1)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(" quality HIGH"));

  ASSERT_EQ(Veriface({"galleries", "create", "cli-report"}).exit_code, 0);
  for (const char* person : {"Tony_Blair", "Gerhard_Schroeder"}) {
    r = Veriface({"--gallery", "cli-report", "enroll", "--id", person, LfwImagePath(person, 1), LfwImagePath(person, 2),
                  "--min-quality", "low"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  const std::string png = dir_->File("report.png");
  r = Veriface({"galleries", "report", "cli-report", "--far", "0.01", "--png", png});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("gallery cli-report: 2 identities, 4 templates"));
  EXPECT_THAT(r.out, HasSubstr("pairs: 2 genuine (2 identities with 2+ templates); 4 impostor"));
  EXPECT_THAT(r.out, HasSubstr("in force (best_accuracy)"));
  EXPECT_THAT(r.out, HasSubstr("NOT RELIABLE: needs 1000 impostor pairs"));
  EXPECT_THAT(r.out, HasSubstr("histogram written to " + png));
  std::ifstream file(png, std::ios::binary);
  char magic[8] = {};
  file.read(magic, 8);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");
  const json report = Json({"galleries", "report", "cli-report"});
  EXPECT_EQ(report["genuine_pairs"], "2");  // int64 fields are strings in proto3 JSON
  r = Veriface({"enroll", "--min-quality", "best", LfwImagePath("Tony_Blair", 3)});
  EXPECT_NE(r.exit_code, 0);
}

// An enrolment and a delete whose answers are lost on the way back: the client sends each again with
// its request id, and the server answers with the first result instead of doing the work twice.
TEST_F(ClientTest, AWriteWhoseAnswerIsLostIsRetriedAndReplayed) {
  CommandResult r = Veriface({"galleries", "create", "retries"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto templates = [] {
    v1::GetIdentityRequest request;
    request.set_gallery("retries");
    request.set_identity_id("george");
    v1::Identity identity;
    const grpc::Status status = server_->stub()->GetIdentity(Context().get(), request, &identity);
    return status.ok() ? identity.template_ids_size() : 0;
  };
  {
    LosingRelay relay(server_->grpc_port(), [&] { return templates() > 0; });
    r = RunCommand({ClientBinary(), "--server", relay.address(), "--gallery", "retries", "enroll", "--id", "george",
                    LfwImagePath("George_W_Bush", 1)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(relay.cut());
    EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE"));
    EXPECT_THAT(r.err, HasSubstr("retrying 1 image(s) with the same request id"));
    EXPECT_THAT(r.out, HasSubstr("enrolled 1 image(s) into 1 identity of gallery retries"));
    EXPECT_THAT(r.out, HasSubstr("(1 already enrolled by an earlier attempt)"));
  }
  EXPECT_EQ(templates(), 1);
  {
    LosingRelay relay(server_->grpc_port(), [&] { return templates() == 0; });
    r = RunCommand({ClientBinary(), "--server", relay.address(), "--gallery", "retries", "delete", "george"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(relay.cut());
    EXPECT_THAT(r.err, HasSubstr("retrying the delete of george with the same request id"));
    EXPECT_THAT(
        r.out, HasSubstr("deleted george (1 template(s)) from gallery retries: already deleted by an earlier attempt"));
  }
  // Nothing to retry into: the last UNAVAILABLE is the answer.
  r = RunCommand({ClientBinary(), "--server", "127.0.0.1:1", "--retries", "1", "delete", "george"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("(retry 1 of 1)"));
}

}  // namespace
}  // namespace veriface::testing
