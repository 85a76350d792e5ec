// veriface: the command-line client of veriface-server. One subcommand per RPC, human output by
// default and JSON with --json, plus bulk enrolment with a progress bar and a load generator. Writes
// (enroll, delete) carry request ids and are retried when the server is UNAVAILABLE.

#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/connection.h"
#include "client/image_files.h"
#include "client/load.h"
#include "client/retry.h"
#include "core/progress/progress.h"
#include "proto/grpc_health/v1/health.grpc.pb.h"
#include "trainer/plot/chart.h"

#ifndef VERIFACE_VERSION
#define VERIFACE_VERSION "0.0.0-dev"
#endif

namespace veriface::client {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Globals {
  ConnectionOptions connection;
  bool json = false;
  std::string gallery;  // empty: the server's default gallery
  RetryPolicy retry;    // for the writes that carry a request id (enroll, delete)
};

// The gallery a response names, else the one asked for, else the server's default.
std::string GalleryName(const std::string& answered, const Globals& g) {
  if (!answered.empty()) return answered;
  return g.gallery.empty() ? "default" : g.gallery;
}

// Text output names the gallery only when it is not the default one, so that a deployment without
// named galleries reads as before.
bool IsNamedGallery(const std::string& name) { return name != "default"; }

// Said before each retry, so that a command that is slow because it is retrying says so.
// `why` is the failure (as Describe() gives it), `what` the request(s) sent again.
void NoteRetry(const Globals& g, const std::string& why, const std::string& what, int retry,
               std::chrono::milliseconds wait) {
  std::cerr << "veriface: " << why << "; retrying " << what << " in "
            << absl::StrFormat("%.2f", std::chrono::duration<double>(wait).count()) << " s (retry " << retry << " of "
            << g.retry.retries << ")\n";
}

int Fail(const std::string& message) {
  std::cerr << "veriface: " << message << "\n";
  return 1;
}

int Fail(const grpc::Status& status) { return Fail(Describe(status)); }

void PrintJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  std::cout << out;
}

using Stub = v1::Veriface::Stub;

// One unary call with the connection's deadline. A failure is printed (returns 1); with --json the
// response is printed (returns 0); otherwise returns -1 and the caller prints its text. With `retrying`
// (what the notes call the request; only for requests that carry a request id) an UNAVAILABLE call is
// sent again, unchanged, as g.retry says; each attempt has its own deadline and its own channel, so that it dials
// afresh rather than inherit the previous channel's reconnect back-off.
template <typename Request, typename Response>
int Call(const Globals& g, grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
         const Request& request, Response* response, const std::string& retrying = "") {
  const auto attempt = [&] {
    auto stub = v1::Veriface::NewStub(MakeChannel(g.connection));
    grpc::ClientContext context;
    PrepareContext(g.connection, context);
    response->Clear();
    return ((*stub).*method)(&context, request, response);
  };
  const grpc::Status status =
      !retrying.empty()
          ? WithRetries(g.retry, attempt,
                        [&](int n, const grpc::Status& failed, std::chrono::milliseconds w) {
                          NoteRetry(g, Describe(failed), absl::StrCat(retrying, " with the same request id"), n, w);
                        })
          : attempt();
  if (!status.ok()) return Fail(status);
  if (g.json) {
    PrintJson(*response);
    return 0;
  }
  return -1;
}

// "quality HIGH", or "quality LOW (LOW_SHARPNESS, small: EXTREME_POSE)" naming what pulled it down.
std::string QualityText(const v1::FaceQuality& q) {
  if (q.level() == v1::QUALITY_LEVEL_UNSPECIFIED) return "";  // a server from before face quality
  std::string text = absl::StrCat(" quality ", v1::QualityLevel_Name(q.level()).substr(sizeof("QUALITY_LEVEL_") - 1));
  std::vector<std::string> reasons;
  for (const v1::QualityIssue& issue : q.issues()) {
    reasons.push_back(absl::StrCat(v1::QualityReason_Name(issue.reason()),
                                   issue.level() == v1::QUALITY_LEVEL_MEDIUM ? " (medium)" : ""));
  }
  if (!reasons.empty()) absl::StrAppend(&text, " (", absl::StrJoin(reasons, ", "), ")");
  return text;
}

std::string BoxText(const v1::Face& f) {
  return absl::StrFormat("(%.0f,%.0f)-(%.0f,%.0f) score %.3f", f.box().x1(), f.box().y1(), f.box().x2(), f.box().y2(),
                         f.score()) +
         QualityText(f.quality());
}

const std::vector<std::string> kQualityLevels{"low", "medium", "high"};

// --min-quality's value; empty: the server's default.
v1::QualityLevel ParseQualityLevel(const std::string& name) {
  if (name == "low") return v1::QUALITY_LEVEL_LOW;
  if (name == "medium") return v1::QUALITY_LEVEL_MEDIUM;
  if (name == "high") return v1::QUALITY_LEVEL_HIGH;
  return v1::QUALITY_LEVEL_UNSPECIFIED;
}

std::string UsedFaceText(const v1::UsedFace& u) {
  return absl::StrFormat("face %d of %d at %s in a %dx%d image", u.index() + 1, u.faces_detected(), BoxText(u.face()),
                         u.image_width(), u.image_height());
}

v1::FaceSelection ParseSelection(const std::string& name) {
  if (name == "largest") return v1::FACE_SELECTION_LARGEST;
  if (name == "central") return v1::FACE_SELECTION_CENTRAL;
  if (name == "score") return v1::FACE_SELECTION_HIGHEST_SCORE;
  if (name == "single") return v1::FACE_SELECTION_SINGLE;
  return v1::FACE_SELECTION_UNSPECIFIED;
}

const std::vector<std::string> kSelections{"largest", "central", "score", "single"};

// "id:NAME" names an identity enrolled in `gallery`; anything else is an image file.
absl::Status FillFaceInput(const std::string& arg, const std::string& gallery, v1::FaceInput* input) {
  if (arg.rfind("id:", 0) == 0) {
    input->set_identity_id(arg.substr(3));
    input->set_gallery(gallery);
    return absl::OkStatus();
  }
  auto bytes = ReadFileBytes(arg);
  if (!bytes.ok()) return bytes.status();
  input->set_image(*std::move(bytes));
  return absl::OkStatus();
}

struct ThresholdFlags {
  double threshold = 2;  // outside [-1, 1]: not given
  std::string operating_point;
  void Add(CLI::App* app) {
    app->add_option("--threshold", threshold, "Cosine-similarity threshold in [-1, 1] for this call");
    app->add_option("--operating-point", operating_point, "A named operating point of the model (see `info`)");
  }
  void Fill(v1::ThresholdOverride* out) const {
    if (threshold <= 1) out->set_threshold(threshold);
    if (!operating_point.empty()) out->set_operating_point(operating_point);
  }
};

// ---- health, info -------------------------------------------------------------------------------------

int Health(const Globals& g, const std::string& service, double wait_seconds) {
  auto stub = grpc::health::v1::Health::NewStub(MakeChannel(g.connection));
  const Clock::time_point give_up =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait_seconds));
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status;
  while (true) {
    grpc::ClientContext context;
    PrepareContext(g.connection, context);
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    status = stub->Check(&context, request, &response);
    const bool serving = status.ok() && response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
    if (serving || Clock::now() >= give_up) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (!status.ok()) return Fail(status);
  if (g.json) {
    PrintJson(response);
  } else {
    std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()) << "\n";
  }
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

// One line per measured result that has a mean accuracy ("lfw_view2: 99.25% +- 0.23 over 6000 pairs, AUC
// 0.9995, EER 0.80%"); anything else as its JSON. The whole record is what --json prints.
std::string AccuracySummary(const google::protobuf::Struct& accuracy) {
  std::vector<std::string> lines;
  for (const auto& [name, value] : accuracy.fields()) {
    const auto& f = value.struct_value().fields();
    const auto number = [&f](const char* key) { return f.count(key) ? f.at(key).number_value() : -1.0; };
    if (value.has_struct_value() && f.count("mean_accuracy")) {
      std::string line = absl::StrFormat("%s: %.2f%%", name, 100 * number("mean_accuracy"));
      if (f.count("std_accuracy")) absl::StrAppendFormat(&line, " +- %.2f", 100 * number("std_accuracy"));
      if (f.count("pairs")) absl::StrAppendFormat(&line, " over %.0f pairs", number("pairs"));
      if (f.count("auc")) absl::StrAppendFormat(&line, ", AUC %.4f", number("auc"));
      if (f.count("eer")) absl::StrAppendFormat(&line, ", EER %.2f%%", 100 * number("eer"));
      if (f.count("test_time")) absl::StrAppendFormat(&line, " (test time %s)", f.at("test_time").string_value());
      lines.push_back(line);
    } else {
      std::string json;
      (void)google::protobuf::util::MessageToJsonString(value, &json);
      lines.push_back(absl::StrCat(name, ": ", json));
    }
  }
  return lines.empty() ? "not measured" : absl::StrJoin(lines, "\n            ");
}

int Info(const Globals& g) {
  v1::ModelInfo info;
  if (const int rc = Call(g, &Stub::GetModelInfo, v1::GetModelInfoRequest(), &info); rc >= 0) return rc;
  std::vector<std::string> points;
  for (const auto& [name, value] : info.thresholds()) points.push_back(absl::StrFormat("%s=%.4f", name, value));
  const std::string accuracy = AccuracySummary(info.accuracy());
  std::cout << "model       " << info.model_id() << "\n"
            << "            " << info.description() << "\n"
            << "embedding   " << info.embedding_dim() << "-D, cosine similarity\n"
            << "threshold   " << absl::StrFormat("%.4f", info.default_threshold()) << " ("
            << info.default_threshold_source() << ")\n"
            << "calibrated  " << (points.empty() ? "none" : absl::StrJoin(points, ", ")) << "\n"
            << "accuracy    " << accuracy << "\n"
            << "min face    " << info.default_min_face_size() << " px\n"
            << "device      " << info.device() << "\n"
            << "server      " << info.server_version() << "\n";
  // A server from before named galleries says nothing about its store.
  if (info.gallery_store().empty()) {
    std::cout << "gallery     " << info.gallery_identities() << " identities, " << info.gallery_templates()
              << " templates\n";
    return 0;
  }
  const bool shared = info.gallery_store() != "sqlite";
  std::cout << "gallery     " << info.gallery_store() << " store" << (shared ? " (shared by replicas)" : "") << ", "
            << info.galleries() << " galler" << (info.galleries() == 1 ? "y" : "ies") << ": "
            << info.gallery_identities() << " identities, " << info.gallery_templates() << " templates in all\n";
  // Only a shared store can fall behind: another replica may have written what this one has not read.
  if (shared) {
    std::cout << "sync        "
              << (info.gallery_may_be_stale() ? "MAY BE STALE (other replicas' recent writes may be missing): "
                                              : "up to date: ")
              << absl::StrFormat("last caught up %.1f s ago", info.gallery_seconds_since_sync()) << "\n";
  }
  return 0;
}

// ---- embed, verify, identify --------------------------------------------------------------------------

int Embed(const Globals& g, const std::string& path, int min_face_size, bool skip_embeddings) {
  auto bytes = ReadFileBytes(path);
  if (!bytes.ok()) return Fail(std::string(bytes.status().message()));
  v1::EmbedRequest request;
  request.set_image(*std::move(bytes));
  request.mutable_detection()->set_min_face_size(min_face_size);
  request.set_skip_embeddings(skip_embeddings);
  v1::EmbedResponse response;
  if (const int rc = Call(g, &Stub::Embed, request, &response); rc >= 0) return rc;
  std::cout << response.faces_size() << " face(s) in the " << response.image_width() << "x" << response.image_height()
            << " image";
  if (response.faces_omitted() > 0) std::cout << " (" << response.faces_omitted() << " more omitted)";
  std::cout << "\n";
  for (int i = 0; i < response.faces_size(); ++i) {
    const v1::Face& f = response.faces(i);
    std::cout << "face " << i + 1 << ": " << BoxText(f);
    if (f.embedding_size() > 0) {
      std::cout << absl::StrFormat("  embedding [%.4f, %.4f, %.4f, ...] (%d-D)", f.embedding(0), f.embedding(1),
                                   f.embedding(2), f.embedding_size());
    }
    std::cout << "\n";
  }
  return 0;
}

int Verify(const Globals& g, const std::string& a, const std::string& b, const std::string& selection,
           const ThresholdFlags& threshold, const std::string& min_quality) {
  v1::VerifyRequest request;
  for (const auto& [arg, side] : {std::pair{&a, request.mutable_a()}, std::pair{&b, request.mutable_b()}}) {
    if (const absl::Status s = FillFaceInput(*arg, g.gallery, side); !s.ok()) return Fail(std::string(s.message()));
    side->set_face_selection(ParseSelection(selection));
    side->set_min_quality(ParseQualityLevel(min_quality));
  }
  threshold.Fill(request.mutable_threshold());
  v1::VerifyResponse response;
  if (const int rc = Call(g, &Stub::Verify, request, &response); rc >= 0) return rc;
  std::cout << (response.match() ? "MATCH" : "NO MATCH")
            << absl::StrFormat("  similarity %.4f (threshold %.4f, %s)\n", response.similarity(), response.threshold(),
                               response.threshold_source());
  if (response.has_face_a()) std::cout << "a: " << UsedFaceText(response.face_a()) << "\n";
  if (!response.template_id_a().empty()) std::cout << "a: template " << response.template_id_a() << "\n";
  if (response.has_face_b()) std::cout << "b: " << UsedFaceText(response.face_b()) << "\n";
  if (!response.template_id_b().empty()) std::cout << "b: template " << response.template_id_b() << "\n";
  return 0;
}

int Identify(const Globals& g, const std::string& path, int top_k, bool all, const std::string& selection,
             const ThresholdFlags& threshold, const std::string& min_quality) {
  auto bytes = ReadFileBytes(path);
  if (!bytes.ok()) return Fail(std::string(bytes.status().message()));
  v1::IdentifyRequest request;
  request.set_image(*std::move(bytes));
  request.set_top_k(top_k);
  request.set_include_below_threshold(all);
  request.set_face_selection(ParseSelection(selection));
  request.set_gallery(g.gallery);
  request.set_min_quality(ParseQualityLevel(min_quality));
  threshold.Fill(request.mutable_threshold());
  v1::IdentifyResponse response;
  if (const int rc = Call(g, &Stub::Identify, request, &response); rc >= 0) return rc;
  const std::string gallery = GalleryName(response.gallery(), g);
  if (IsNamedGallery(gallery)) std::cout << "gallery " << gallery << "\n";
  std::cout << UsedFaceText(response.face()) << "\n";
  if (response.matches_size() == 0) {
    std::cout << absl::StrFormat("no enrolled identity reaches the threshold %.4f (%s)\n", response.threshold(),
                                 response.threshold_source());
  }
  for (int i = 0; i < response.matches_size(); ++i) {
    const v1::IdentityMatch& m = response.matches(i);
    std::cout << absl::StrFormat("%2d. %-30s %.4f  %s\n", i + 1, m.identity_id(), m.similarity(),
                                 m.match() ? "match" : "below threshold");
  }
  return 0;
}

// ---- enroll ---------------------------------------------------------------------------------------------

// What became of one image of the plan, over every stream that carried it.
struct EnrollState {
  enum class Fate { kPending, kEnrolled, kFailed };
  Fate fate = Fate::kPending;
  // Made once, before the first attempt, and sent with every retry: that is what lets the server answer
  // a retry of an enrolment it already committed with that enrolment instead of adding the image twice.
  std::string request_id = NewRequestId();
  std::string template_id;
  std::string gallery;
  bool replayed = false;
  // The last failure. For a pending item: its own UNAVAILABLE answer, or empty when the stream broke
  // before answering it.
  std::string error;
};

// What every request of one `enroll` shares.
struct EnrollFields {
  std::map<std::string, std::string> metadata;
  v1::FaceSelection selection = v1::FACE_SELECTION_UNSPECIFIED;
  v1::QualityLevel min_quality = v1::QUALITY_LEVEL_UNSPECIFIED;
};

// Sends the plan's pending items over one EnrollStream, one request per image so that a bad photo costs
// only itself, and records each answer in `states`. Items answered UNAVAILABLE, and those the stream
// never answered, stay pending. The writer thread reads files and sends; this thread reads the
// acknowledgements. Returns the stream's status.
grpc::Status EnrollRound(const Globals& g, const std::vector<EnrollItem>& items, const EnrollFields& fields,
                         std::vector<EnrollState>& states, const std::function<void()>& on_answer) {
  std::vector<size_t> pending;
  for (size_t i = 0; i < items.size(); ++i) {
    if (states[i].fate == EnrollState::Fate::kPending) pending.push_back(i);
  }
  auto stub = v1::Veriface::NewStub(MakeChannel(g.connection));
  grpc::ClientContext context;  // no deadline: a bulk enrolment takes as long as it takes
  AddCredentials(g.connection, context);
  auto stream = stub->EnrollStream(&context);
  std::mutex mutex;
  std::vector<size_t> sent;  // stream index -> item
  std::thread writer([&] {
    for (const size_t i : pending) {
      auto bytes = ReadFileBytes(items[i].path);
      if (!bytes.ok()) {
        std::lock_guard<std::mutex> lock(mutex);
        states[i].fate = EnrollState::Fate::kFailed;
        states[i].error = std::string(bytes.status().message());
        continue;
      }
      v1::EnrollRequest request;
      request.set_identity_id(items[i].identity_id);
      request.mutable_metadata()->insert(fields.metadata.begin(), fields.metadata.end());
      request.add_images(*std::move(bytes));
      request.set_face_selection(fields.selection);
      request.set_min_quality(fields.min_quality);
      request.set_gallery(g.gallery);
      {
        std::lock_guard<std::mutex> lock(mutex);
        request.set_request_id(states[i].request_id);
        sent.push_back(i);
      }
      if (!stream->Write(request)) break;
    }
    stream->WritesDone();
  });

  v1::EnrollStreamResponse response;
  while (stream->Read(&response)) {
    std::lock_guard<std::mutex> lock(mutex);
    EnrollState& state = states[sent.at(static_cast<size_t>(response.index()))];
    if (response.has_enrolled()) {
      state.fate = EnrollState::Fate::kEnrolled;
      state.template_id = response.enrolled().template_ids_size() > 0 ? response.enrolled().template_ids(0) : "";
      state.gallery = response.enrolled().gallery();
      state.replayed = response.enrolled().replayed();
    } else {
      const grpc::Status failed(static_cast<grpc::StatusCode>(response.error().code()), response.error().message());
      state.error = Describe(failed);
      if (!IsRetryable(failed)) state.fate = EnrollState::Fate::kFailed;
    }
    on_answer();
  }
  writer.join();
  return stream->Finish();
}

int Enroll(const Globals& g, const std::vector<std::string>& paths, const std::string& id,
           const std::vector<std::string>& meta, int max_per_identity, const std::string& selection,
           const std::string& min_quality, bool progress) {
  auto plan = PlanEnrollment(paths, id, max_per_identity);
  if (!plan.ok()) return Fail(std::string(plan.status().message()));
  const std::vector<EnrollItem>& items = *plan;
  EnrollFields fields;
  fields.selection = ParseSelection(selection);
  fields.min_quality = ParseQualityLevel(min_quality);
  for (const std::string& kv : meta) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return Fail(absl::StrCat("--meta '", kv, "' is not KEY=VALUE"));
    fields.metadata[kv.substr(0, eq)] = kv.substr(eq + 1);
  }

  std::vector<EnrollState> states(items.size());
  ProgressBar bar("enroll", static_cast<int64_t>(items.size()), "images", progress ? &std::cerr : nullptr);
  const auto count = [&states](EnrollState::Fate fate) {
    return static_cast<size_t>(
        std::count_if(states.begin(), states.end(), [fate](const EnrollState& s) { return s.fate == fate; }));
  };
  // Called by EnrollRound with its lock held, so the states are read consistently.
  const auto update_bar = [&] {
    const size_t failed = count(EnrollState::Fate::kFailed);
    bar.Update(static_cast<int64_t>(count(EnrollState::Fate::kEnrolled) + failed), absl::StrCat("failed ", failed));
  };
  const Clock::time_point start = Clock::now();
  grpc::Status status;
  // A stream that breaks with UNAVAILABLE (the server restarting, a replica going away, a lost
  // connection), and items answered UNAVAILABLE (the gallery's database out of reach), are sent again
  // on a new stream after a back-off; the request ids make that safe for items the server had already
  // committed when the answer was lost.
  for (int retry = 0;; ++retry) {
    status = EnrollRound(g, items, fields, states, update_bar);
    const size_t pending = count(EnrollState::Fate::kPending);
    if (pending == 0 || retry >= g.retry.retries || !(status.ok() || IsRetryable(status))) break;
    // The stream's own failure, else the first UNAVAILABLE answer of an item.
    std::string why = status.ok() ? "" : Describe(status);
    for (size_t i = 0; i < states.size() && why.empty(); ++i) {
      if (states[i].fate == EnrollState::Fate::kPending) why = states[i].error;
    }
    const std::chrono::milliseconds wait = Backoff(g.retry, retry + 1);
    NoteRetry(g, why.empty() ? "UNAVAILABLE" : why, absl::StrCat(pending, " image(s) with the same request ids"),
              retry + 1, wait);
    std::this_thread::sleep_for(wait);
  }
  // What is still pending failed: with its own last answer, or, never answered, with the stream's status.
  std::vector<size_t> unanswered;
  for (size_t i = 0; i < states.size(); ++i) {
    if (states[i].fate != EnrollState::Fate::kPending) continue;
    if (states[i].error.empty()) {
      unanswered.push_back(i);
    } else {
      states[i].fate = EnrollState::Fate::kFailed;
    }
  }
  update_bar();
  bar.Finish();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  json done = json::array(), failed = json::array();
  std::set<std::string> identities;
  std::string gallery;
  size_t acknowledged = 0, replayed = 0;
  std::vector<size_t> failures;
  for (size_t i = 0; i < items.size(); ++i) {
    const EnrollState& s = states[i];
    if (s.fate == EnrollState::Fate::kEnrolled) {
      ++acknowledged;
      if (s.replayed) ++replayed;
      if (gallery.empty()) gallery = s.gallery;
      identities.insert(items[i].identity_id);
      done.push_back({{"path", items[i].path},
                      {"identity_id", items[i].identity_id},
                      {"template_id", s.template_id},
                      {"replayed", s.replayed}});
    } else if (s.fate == EnrollState::Fate::kFailed) {
      failures.push_back(i);
      failed.push_back({{"path", items[i].path}, {"error", s.error}});
    }
  }
  gallery = GalleryName(gallery, g);
  if (g.json) {
    json not_answered = json::array();
    for (const size_t i : unanswered) not_answered.push_back(items[i].path);
    std::cout << json{{"gallery", gallery},
                      {"enrolled", done},
                      {"failed", failed},
                      {"unanswered", not_answered},
                      {"identities", identities.size()}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << absl::StrFormat("enrolled %zu image(s) into %zu identit%s", acknowledged, identities.size(),
                                 identities.size() == 1 ? "y" : "ies");
    if (IsNamedGallery(gallery)) std::cout << " of gallery " << gallery;
    std::cout << absl::StrFormat(" in %.1f s", elapsed);
    if (replayed > 0) std::cout << " (" << replayed << " already enrolled by an earlier attempt)";
    if (!failures.empty()) std::cout << "; " << failures.size() << " failed";
    if (!unanswered.empty()) std::cout << "; " << unanswered.size() << " not answered";
    std::cout << "\n";
    for (size_t i = 0; i < failures.size() && i < 20; ++i) {
      std::cerr << "  " << items[failures[i]].path << ": " << states[failures[i]].error << "\n";
    }
    if (failures.size() > 20) std::cerr << "  ... and " << failures.size() - 20 << " more\n";
  }
  if (!status.ok()) return Fail(status);
  return failures.empty() && unanswered.empty() ? 0 : 1;
}

// ---- identities -----------------------------------------------------------------------------------------

void PrintIdentity(const v1::Identity& identity) {
  std::vector<std::string> meta;
  for (const auto& [k, v] : identity.metadata()) meta.push_back(absl::StrCat(k, "=", v));
  std::cout << absl::StrFormat("%-30s %4d template(s)  %s\n", identity.identity_id(), identity.template_ids_size(),
                               absl::StrJoin(meta, " "));
}

int List(const Globals& g, int page_size, bool all, std::string token) {
  auto stub = v1::Veriface::NewStub(MakeChannel(g.connection));
  v1::ListIdentitiesResponse combined;
  do {
    v1::ListIdentitiesRequest request;
    request.set_page_size(page_size);
    request.set_page_token(token);
    request.set_gallery(g.gallery);
    grpc::ClientContext context;
    PrepareContext(g.connection, context);
    v1::ListIdentitiesResponse page;
    const grpc::Status status = stub->ListIdentities(&context, request, &page);
    if (!status.ok()) return Fail(status);
    combined.mutable_identities()->MergeFrom(page.identities());
    combined.set_total_identities(page.total_identities());
    combined.set_next_page_token(page.next_page_token());
    token = page.next_page_token();
  } while (all && !token.empty());
  if (g.json) {
    PrintJson(combined);
    return 0;
  }
  for (const v1::Identity& identity : combined.identities()) PrintIdentity(identity);
  std::cout << combined.identities_size() << " of " << combined.total_identities() << " identities";
  if (const std::string gallery = GalleryName("", g); IsNamedGallery(gallery)) std::cout << " in gallery " << gallery;
  if (!combined.next_page_token().empty()) std::cout << " (more: --all, or --page-token " << token << ")";
  std::cout << "\n";
  return 0;
}

int Get(const Globals& g, const std::string& id) {
  v1::GetIdentityRequest request;
  request.set_identity_id(id);
  request.set_gallery(g.gallery);
  v1::Identity identity;
  if (const int rc = Call(g, &Stub::GetIdentity, request, &identity); rc >= 0) return rc;
  PrintIdentity(identity);
  if (const std::string gallery = GalleryName(identity.gallery(), g); IsNamedGallery(gallery)) {
    std::cout << "  gallery " << gallery << "\n";
  }
  for (const std::string& t : identity.template_ids()) std::cout << "  template " << t << "\n";
  return 0;
}

int Delete(const Globals& g, const std::vector<std::string>& ids) {
  int failed = 0;
  for (const std::string& id : ids) {
    v1::DeleteIdentityRequest request;
    request.set_identity_id(id);
    request.set_gallery(g.gallery);
    // One id per identity, reused by the retries: a retry of a delete whose answer was lost is answered
    // `replayed` instead of NOT_FOUND.
    request.set_request_id(NewRequestId());
    v1::DeleteIdentityResponse response;
    const int rc = Call(g, &Stub::DeleteIdentity, request, &response, absl::StrCat("the delete of ", id));
    if (rc < 0) {
      std::cout << "deleted " << response.identity_id() << " (" << response.templates_deleted() << " template(s))";
      if (const std::string gallery = GalleryName(response.gallery(), g); IsNamedGallery(gallery)) {
        std::cout << " from gallery " << gallery;
      }
      if (response.replayed()) std::cout << ": already deleted by an earlier attempt";
      std::cout << "\n";
    }
    if (rc > 0) failed = rc;
  }
  return failed;
}

// ---- galleries ------------------------------------------------------------------------------------------

int GalleriesList(const Globals& g) {
  v1::ListGalleriesResponse response;
  if (const int rc = Call(g, &Stub::ListGalleries, v1::ListGalleriesRequest(), &response); rc >= 0) return rc;
  std::cout << absl::StrFormat("%-24s %10s %10s %14s\n", "gallery", "identities", "templates", "max templates");
  for (const v1::GalleryInfo& info : response.galleries()) {
    std::cout << absl::StrFormat("%-24s %10d %10d %14d\n", info.name(), info.identities(), info.templates(),
                                 info.max_templates());
  }
  std::cout << response.galleries_size() << " galler" << (response.galleries_size() == 1 ? "y" : "ies") << "\n";
  return 0;
}

int GalleryCreate(const Globals& g, const std::string& name, int64_t max_templates) {
  v1::CreateGalleryRequest request;
  request.set_name(name);
  request.set_max_templates(max_templates);
  v1::GalleryInfo info;
  if (const int rc = Call(g, &Stub::CreateGallery, request, &info); rc >= 0) return rc;
  std::cout << "created gallery " << info.name() << " (at most " << info.max_templates() << " templates)\n";
  return 0;
}

// No prompt, like `delete`; the server itself refuses to delete the default gallery.
int GalleryDelete(const Globals& g, const std::string& name) {
  v1::DeleteGalleryRequest request;
  request.set_name(name);
  v1::GalleryInfo info;
  if (const int rc = Call(g, &Stub::DeleteGallery, request, &info); rc >= 0) return rc;
  std::cout << "deleted gallery " << info.name() << " (" << info.identities() << " identities, " << info.templates()
            << " templates)\n";
  return 0;
}

std::string RateText(const v1::RateEstimate& r) {
  return absl::StrFormat("%.3g%% (%d of %d; 95%% %.3g-%.3g%%)", 100 * r.rate(), r.errors(), r.pairs(), 100 * r.low(),
                         100 * r.high());
}

// The histogram as a chart: each bin's count drawn as that many values at its centre, over the same bins.
absl::Status WriteReportPng(const v1::GalleryReport& r, const std::string& path) {
  const v1::ScoreHistogram& h = r.histogram();
  const int bins = h.genuine_size();
  if (bins == 0 || !(h.max() > h.min())) return absl::FailedPreconditionError("the report has no histogram to draw");
  const double width = (h.max() - h.min()) / bins;
  plot::Chart chart;
  chart.title = absl::StrCat("Gallery \"", r.gallery(), "\": genuine and impostor similarities");
  chart.subtitle = absl::StrFormat("%d identities, %d templates; %d genuine and %d impostor pairs; %s", r.identities(),
                                   r.templates(), r.genuine_pairs(), r.impostor_pairs(), r.model_id());
  chart.x.label = "cosine similarity";
  chart.x.min = h.min();
  chart.x.max = h.max();
  chart.y.label = "fraction of pairs";
  chart.histogram_bins = bins;
  chart.histogram_density = true;
  plot::HistogramSeries genuine{"genuine (same identity)", {}, plot::PaletteColor(2)};
  plot::HistogramSeries impostor{"impostor (different identities)", {}, plot::PaletteColor(1)};
  for (int i = 0; i < bins; ++i) {
    const double centre = h.min() + (i + 0.5) * width;
    genuine.values.insert(genuine.values.end(), static_cast<size_t>(h.genuine(i)), centre);
    impostor.values.insert(impostor.values.end(), static_cast<size_t>(h.impostor(i)), centre);
  }
  chart.histograms = {genuine, impostor};
  for (const v1::ThresholdRates& t : r.thresholds()) {
    chart.references.push_back({true, t.threshold(), t.name(), {60, 60, 60}, true, false});
    chart.notes.push_back(absl::StrFormat("%s %.4f: FAR %.3g%%, FRR %.3g%%", t.name(), t.threshold(),
                                          100 * t.far().rate(), 100 * t.frr().rate()));
  }
  return plot::WritePng(chart, path);
}

int GalleryReport(const Globals& g, const std::string& name, const std::vector<double>& fars, int64_t max_templates,
                  const std::string& png) {
  v1::GalleryReportRequest request;
  request.set_gallery(name.empty() ? g.gallery : name);
  for (const double far : fars) request.add_target_fars(far);
  request.set_max_templates(max_templates);
  v1::GalleryReport r;
  const int rc = Call(g, &Stub::GetGalleryReport, request, &r);
  if (rc > 0) return rc;
  if (!png.empty()) {
    if (const absl::Status s = WriteReportPng(r, png); !s.ok()) return Fail(std::string(s.message()));
    if (rc < 0) std::cout << "histogram written to " << png << "\n";
  }
  if (rc == 0) return 0;  // --json printed it
  std::cout << "gallery " << r.gallery() << ": " << r.identities() << " identities, " << r.templates()
            << " templates (model " << r.model_id() << ")\n";
  if (r.sampled_identities() < r.identities()) {
    std::cout << "sampled " << r.sampled_identities() << " identities with " << r.sampled_templates() << " templates\n";
  }
  std::cout << "pairs: " << r.genuine_pairs() << " genuine (" << r.identities_with_genuine_pairs()
            << " identities with 2+ templates)" << (r.genuine_sampled() ? ", sampled" : "") << "; "
            << r.impostor_pairs() << " impostor" << (r.impostor_sampled() ? ", sampled" : "") << "\n\n";
  std::cout << absl::StrFormat("%-16s %9s  %-40s %s\n", "threshold", "value", "false accepts (FAR)",
                               "false rejects (FRR)");
  for (const v1::ThresholdRates& t : r.thresholds()) {
    const std::string label = t.source().empty() ? t.name() : absl::StrCat(t.name(), " (", t.source(), ")");
    std::cout << absl::StrFormat("%-16s %9.4f  %-40s %s\n", label, t.threshold(), RateText(t.far()), RateText(t.frr()));
  }
  std::cout << "\n" << absl::StrFormat("%-16s %9s  %-40s %s\n", "target FAR", "threshold", "achieved FAR", "FRR there");
  for (const v1::FarTargetRates& t : r.far_targets()) {
    std::cout << absl::StrFormat(
        "%-16g %9.4f  %-40s %s%s\n", t.target_far(), t.threshold(), RateText(t.far()), RateText(t.frr()),
        t.reliable() ? "" : absl::StrCat("  NOT RELIABLE: needs ", t.impostor_pairs_needed(), " impostor pairs"));
  }
  for (const std::string& note : r.notes()) std::cout << "note: " << note << "\n";
  return 0;
}

// ---- load -------------------------------------------------------------------------------------------------

int Load(const Globals& g, const std::vector<std::string>& paths, size_t max_images, const std::string& mix_text,
         LoadOptions options) {
  auto mix = ParseMix(mix_text);
  if (!mix.ok()) return Fail(std::string(mix.status().message()));
  options.mix = *mix;
  auto files = CollectImages(paths, max_images);
  if (!files.ok()) return Fail(std::string(files.status().message()));
  std::vector<std::string> images;
  for (const std::string& f : *files) {
    auto bytes = ReadFileBytes(f);
    if (!bytes.ok()) return Fail(std::string(bytes.status().message()));
    images.push_back(*std::move(bytes));
  }
  auto report = RunLoad(g.connection, options, images);
  if (!report.ok()) return Fail(std::string(report.status().message()));
  const auto summary_json = [](const LatencySummary& s) {
    return json{{"calls", s.calls},   {"p50_ms", s.p50_ms}, {"p90_ms", s.p90_ms},
                {"p99_ms", s.p99_ms}, {"max_ms", s.max_ms}, {"mean_ms", s.mean_ms}};
  };
  if (g.json) {
    json out{{"mix", options.mix},
             {"concurrency", report->concurrency},
             {"offered_rate_per_s", report->offered_rate},
             {"deadline_s", options.deadline_seconds},
             {"skipped", report->skipped},
             {"retry_waits", report->retry_waits},
             {"images", images.size()},
             {"elapsed_s", report->elapsed_seconds},
             {"calls", report->calls},
             {"ok", report->ok},
             {"throughput_per_s", report->throughput},
             {"latency", summary_json(report->latency)},
             {"errors", report->errors},
             {"error_examples", report->error_examples}};
    for (const auto& [name, s] : report->by_rpc) out["by_rpc"][name] = summary_json(s);
    std::cout << out.dump(2) << "\n";
  } else {
    if (report->offered_rate > 0) {
      std::cout << absl::StrFormat("open loop: %.2f calls/s offered, at most %d in flight, %d arrivals skipped\n",
                                   report->offered_rate, report->concurrency, report->skipped);
    }
    std::cout << absl::StrFormat("%d calls in %.2f s at concurrency %d over %zu images: %d ok, %.2f calls/s\n",
                                 report->calls, report->elapsed_seconds, report->concurrency, images.size(), report->ok,
                                 report->throughput);
    std::cout << absl::StrFormat("%-10s %8s %9s %9s %9s %9s\n", "rpc", "calls", "p50 ms", "p90 ms", "p99 ms", "max ms");
    for (const auto& [name, s] : report->by_rpc) {
      std::cout << absl::StrFormat("%-10s %8d %9.1f %9.1f %9.1f %9.1f\n", name, s.calls, s.p50_ms, s.p90_ms, s.p99_ms,
                                   s.max_ms);
    }
    for (const auto& [code, n] : report->errors) {
      std::cout << absl::StrFormat("errors: %d %s (e.g. %s)\n", n, code, report->error_examples[code]);
    }
    if (report->retry_waits > 0) {
      std::cout << absl::StrFormat("%d refusals waited out their retry-after-ms before the next call\n",
                                   report->retry_waits);
    }
  }
  return report->ok == report->calls ? 0 : 1;
}

// The API key (--api-key, else --api-key-file, else $VERIFACE_API_KEY) and the TLS files.
absl::Status ResolveCredentials(const std::string& api_key_file, bool key_on_command_line, ConnectionOptions& c) {
  if (!api_key_file.empty()) {
    if (key_on_command_line) return absl::InvalidArgumentError("give --api-key or --api-key-file, not both");
    auto key = ReadApiKeyFile(api_key_file);
    if (!key.ok()) return key.status();
    c.api_key = *std::move(key);
  } else if (!key_on_command_line) {
    if (const char* env = std::getenv("VERIFACE_API_KEY"); env != nullptr) c.api_key = env;
  }
  for (const char ch : c.api_key) {
    // gRPC metadata values are printable ASCII; anything else would fail every call less clearly.
    if (ch < 0x20 || ch > 0x7e) {
      return absl::InvalidArgumentError("the API key holds a character that is not printable ASCII");
    }
  }
  return LoadConnectionFiles(c);
}

int Main(int argc, char** argv) {
  CLI::App app{"veriface: command-line client of veriface-server"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(VERIFACE_VERSION));
  // A newcomer's first `--help` should lead to the guide that takes them from a clone to their own photos.
  app.footer("First run, from a clone to enrolling your own photos: the README's 'First run' section");
  // The global options may also follow the subcommand (`veriface identify --gallery shop photo.jpg`).
  app.fallthrough();
  Globals g;
  if (const char* env = std::getenv("VERIFACE_SERVER"); env != nullptr && *env != '\0') g.connection.server = env;
  app.add_option("-s,--server", g.connection.server,
                 "Server address host:port (default $VERIFACE_SERVER or "
                 "localhost:50051)");
  app.add_option("--timeout", g.connection.timeout_seconds, "Deadline per call in seconds; 0: none")
      ->capture_default_str();
  app.add_flag("--json", g.json, "Print JSON instead of text");
  app.add_option("-g,--gallery", g.gallery,
                 "Named gallery for enroll, identify, verify's id: sides, list, get, delete and load (default: the "
                 "server's default gallery)")
      ->envname("VERIFACE_GALLERY");
  app.add_option("--retries", g.retry.retries,
                 "Times an enroll or delete that failed UNAVAILABLE is sent again, with the same request id")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  ConnectionOptions& c = g.connection;
  app.add_flag("--tls", c.tls, "Use TLS, trusting gRPC's default root CAs (implied by the other --tls options)");
  app.add_option("--tls-ca", c.tls_ca_file, "PEM CA certificate(s) that sign the server's certificate")
      ->envname("VERIFACE_TLS_CA");
  app.add_option("--tls-cert", c.tls_cert_file, "PEM client certificate, for a server in tls.mode mtls")
      ->envname("VERIFACE_TLS_CERT");
  app.add_option("--tls-key", c.tls_key_file, "PEM private key of --tls-cert")->envname("VERIFACE_TLS_KEY");
  app.add_option("--tls-server-name", c.tls_server_name,
                 "Name the server's certificate must carry, when it is not the --server host (e.g. dialling "
                 "127.0.0.1 a server whose certificate names veriface.example.com)")
      ->envname("VERIFACE_TLS_SERVER_NAME");
  std::string api_key_file;
  app.add_option("--api-key-file", api_key_file, "File whose first line is the API key to send");
  app.add_option("--api-key", c.api_key,
                 "API key to send (other users can see it in the process list: prefer --api-key-file or "
                 "$VERIFACE_API_KEY)");

  std::string service;
  double wait = 0;
  auto* health = app.add_subcommand("health", "Ask grpc.health.v1 whether the server is SERVING (exit 0 if so)");
  health->add_option("--service", service, "Service name; empty asks about the whole server");
  health->add_option("--wait", wait, "Keep asking for up to this many seconds until SERVING");

  auto* info = app.add_subcommand("info", "The model, its thresholds and accuracy, and the galleries' store and size");

  std::string image;
  int min_face = 0;
  bool no_embeddings = false;
  auto* embed = app.add_subcommand("embed", "Every face in an image, with its embedding");
  embed->add_option("image", image, "Image file")->required();
  embed->add_option("--min-face-size", min_face, "Smallest face searched for, in pixels (0: the model's)");
  embed->add_flag("--no-embeddings", no_embeddings, "Only detect");

  std::string a, b, selection = "largest";
  ThresholdFlags threshold;
  auto* verify = app.add_subcommand("verify", "Are two faces the same person? A and B: image files or id:IDENTITY");
  verify->add_option("a", a, "Image file or id:IDENTITY")->required();
  verify->add_option("b", b, "Image file or id:IDENTITY")->required();
  verify->add_option("--face", selection, "Face of a multi-face image")->check(CLI::IsMember(kSelections));
  threshold.Add(verify);
  std::string min_quality;
  verify->add_option("--min-quality", min_quality, "Refuse image faces below this quality (default: the server's)")
      ->check(CLI::IsMember(kQualityLevels));

  int top_k = 5;
  bool all = false;
  auto* identify = app.add_subcommand("identify", "Who is this? The most similar enrolled identities");
  identify->add_option("image", image, "Image file")->required();
  identify->add_option("-k,--top-k", top_k, "How many identities at most")->capture_default_str();
  identify->add_flag("--all", all, "Also show identities below the threshold");
  identify->add_option("--face", selection, "Face of a multi-face image")->check(CLI::IsMember(kSelections));
  threshold.Add(identify);
  identify->add_option("--min-quality", min_quality, "Refuse a face below this quality (default: the server's)")
      ->check(CLI::IsMember(kQualityLevels));

  std::vector<std::string> paths, meta;
  std::string id, enroll_selection = "central";
  int max_per_identity = 0;
  bool progress = ::isatty(STDERR_FILENO) != 0;
  auto* enroll = app.add_subcommand(
      "enroll", "Enrol images: files, a folder of one person's photos, or a folder in LFW layout (Person/*.jpg)");
  enroll->add_option("paths", paths, "Image files and folders")->required();
  enroll->add_option("--id", id, "Enrol everything as this identity (default: the folder names)");
  enroll->add_option("--meta", meta, "Display metadata KEY=VALUE (repeatable)");
  enroll->add_option("--max-per-identity", max_per_identity, "At most this many images per identity (0: all)");
  enroll->add_option("--face", enroll_selection, "Face of a multi-face image; `single` refuses photos with several")
      ->check(CLI::IsMember(kSelections));
  enroll->add_flag("--progress,!--no-progress", progress, "Show a progress bar (default: when on a terminal)");
  enroll
      ->add_option("--min-quality", min_quality,
                   "Refuse faces below this quality (default: the server's quality.enroll_min_level, medium); low "
                   "accepts every face")
      ->check(CLI::IsMember(kQualityLevels));

  int page_size = 100;
  bool list_all = false;
  std::string page_token;
  auto* list = app.add_subcommand("list", "Enrolled identities");
  list->add_option("--page-size", page_size, "Identities per page")->capture_default_str();
  list->add_flag("--all", list_all, "Fetch every page");
  list->add_option("--page-token", page_token, "Start at this page (printed at the end of the previous one)");

  auto* get = app.add_subcommand("get", "One enrolled identity and its templates");
  get->add_option("id", id, "Identity id")->required();

  std::vector<std::string> ids;
  auto* del = app.add_subcommand("delete", "Delete identities and all their templates");
  del->add_option("ids", ids, "Identity ids")->required();

  std::string gallery_name;
  int64_t max_templates = 0;
  auto* galleries = app.add_subcommand("galleries", "Named galleries: list, create, delete, report");
  galleries->require_subcommand(1);
  auto* galleries_list = galleries->add_subcommand("list", "Every gallery with its size and limit");
  auto* galleries_create = galleries->add_subcommand("create", "Create a gallery");
  galleries_create->add_option("name", gallery_name, "1 to 64 letters, digits, '.', '_', '-'")->required();
  galleries_create
      ->add_option("--max-templates", max_templates, "The most templates it may hold (0: the server's limit)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  auto* galleries_delete = galleries->add_subcommand("delete", "Delete a gallery and everyone enrolled in it");
  galleries_delete->add_option("name", gallery_name, "Gallery name")->required();
  std::vector<double> report_fars;
  std::string report_png;
  int64_t report_max_templates = 0;
  auto* galleries_report = galleries->add_subcommand(
      "report", "How the thresholds do on a gallery's own people: genuine and impostor score distributions");
  galleries_report->add_option("name", gallery_name, "Gallery name (default: --gallery, else the default gallery)");
  galleries_report->add_option("--far", report_fars, "Target false accept rates (default 1e-2 1e-3 1e-4)");
  galleries_report->add_option("--max-templates", report_max_templates, "Sample identities beyond this many templates")
      ->check(CLI::NonNegativeNumber);
  galleries_report->add_option("--png", report_png, "Also draw the score histograms into this PNG file");

  LoadOptions load_options;
  std::string mix = "verify";
  size_t max_images = 200;
  auto* load = app.add_subcommand("load", "Load generator: throughput and latency percentiles");
  load->add_option("images", paths, "Image files or folders to send (searched recursively)")->required();
  load->add_option("--mix", mix,
                   "RPC mix, e.g. verify=3,identify=1,embed=1,enroll=1,delete=1,list=1 (enroll adds an identity per "
                   "call, delete removes the oldest one this run added)")
      ->capture_default_str();
  load->add_option("-c,--concurrency", load_options.concurrency,
                   "Calls in flight (closed loop); with --rate, the most in flight")
      ->capture_default_str();
  load->add_option("--rate", load_options.rate,
                   "Open loop: offer this many calls per second (Poisson arrivals) whatever the server does");
  load->add_option("--deadline", load_options.deadline_seconds, "Each call's deadline in seconds (default: none)");
  load->add_flag("--ignore-retry-after", load_options.ignore_retry_after,
                 "Closed loop: resend refused calls at once instead of waiting the server's retry-after-ms");
  load->add_option("-n,--count", load_options.count, "Calls in all");
  load->add_option("-d,--duration", load_options.duration_seconds, "Seconds to run (when no --count)");
  load->add_option("--warmup", load_options.warmup, "Unmeasured calls first")->capture_default_str();
  load->add_option("--max-images", max_images, "Use at most this many images")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  if (const absl::Status st = ResolveCredentials(api_key_file, app.count("--api-key") > 0, c); !st.ok()) {
    std::cerr << "veriface: " << st.message() << "\n";
    return 2;
  }
  if (*health) return Health(g, service, wait);
  if (*info) return Info(g);
  if (*embed) return Embed(g, image, min_face, no_embeddings);
  if (*verify) return Verify(g, a, b, selection, threshold, min_quality);
  if (*identify) return Identify(g, image, top_k, all, selection, threshold, min_quality);
  if (*enroll) return Enroll(g, paths, id, meta, max_per_identity, enroll_selection, min_quality, progress);
  if (*list) return List(g, page_size, list_all, page_token);
  if (*get) return Get(g, id);
  if (*del) return Delete(g, ids);
  if (*galleries_list) return GalleriesList(g);
  if (*galleries_create) return GalleryCreate(g, gallery_name, max_templates);
  if (*galleries_delete) return GalleryDelete(g, gallery_name);
  if (*galleries_report) return GalleryReport(g, gallery_name, report_fars, report_max_templates, report_png);
  if (*load) {
    if (load_options.count <= 0 && load_options.duration_seconds <= 0) load_options.count = 100;
    load_options.gallery = g.gallery;
    return Load(g, paths, max_images, mix, load_options);
  }
  return 2;
}

}  // namespace
}  // namespace veriface::client

int main(int argc, char** argv) { return veriface::client::Main(argc, argv); }
