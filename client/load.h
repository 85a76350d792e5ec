#pragma once
// `veriface load`: a load generator, until `count` calls in all or `duration_seconds` have passed, with
// RPCs drawn by a weighted mix; the report gives throughput and latency percentiles.
//
// Closed loop (rate 0): `concurrency` threads each send one call at a time, so the offered load falls
// as the server slows. Open loop (rate > 0): calls arrive at `rate` per second (Poisson arrivals,
// seeded) whatever the server does, as independent clients would send them; latency is measured from
// each call's arrival, so that time spent waiting for a free sender counts; an arrival that finds all
// `concurrency` senders busy is not sent and counts as skipped.
//
// A closed-loop sender told by a refusal when to come back (retry-after-ms) waits about that long (the
// hint jittered by up to half) before its next call, as a well-behaved client would; `ignore_retry_after` makes it
// resend at once, as a client that ignores the hint would. Open-loop arrivals come when they come.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/connection.h"

namespace veriface::client {

struct LoadOptions {
  // "verify", "identify", "embed", "enroll", "delete", "list" -> weight. A delete removes the oldest
  // identity this run enrolled that no delete has taken yet; with none, it lists instead (counted as a list).
  std::map<std::string, int> mix{{"verify", 1}};
  int concurrency = 1;          // closed loop: calls in flight; open loop: most calls in flight
  double rate = 0;              // calls per second offered (open loop); 0: closed loop
  double deadline_seconds = 0;  // each call's deadline; 0: none
  int64_t count = 0;            // calls in all; 0: run for duration_seconds
  double duration_seconds = 0;  // used when count is 0
  int64_t warmup = 0;           // calls made (and not measured) before the run
  std::string gallery;          // the gallery Identify searches and Enroll fills; empty: the default
  bool ignore_retry_after = false;
};

// Parses "verify=3,identify=1" (a bare name means weight 1).
absl::StatusOr<std::map<std::string, int>> ParseMix(const std::string& text);

struct LatencySummary {
  int64_t calls = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0, mean_ms = 0;
};

struct LoadReport {
  int concurrency = 0;
  double offered_rate = 0;  // open loop; 0 for closed loop
  int64_t skipped = 0;      // open-loop arrivals not sent: every sender was busy
  int64_t retry_waits = 0;  // closed loop: refusals whose retry-after-ms the sender waited out
  double elapsed_seconds = 0;
  int64_t calls = 0;
  int64_t ok = 0;
  double throughput = 0;                              // successful calls per second
  LatencySummary latency;                             // every measured call
  std::map<std::string, LatencySummary> by_rpc;       // per RPC of the mix
  std::map<std::string, int64_t> errors;              // status code name -> count
  std::map<std::string, std::string> error_examples;  // status code name -> one message
};

// `images` holds encoded images; Verify compares consecutive ones, Identify and Embed send one each,
// Enroll makes a new identity of one (its largest face, at any quality) per call, List asks for a page of
// 100.
absl::StatusOr<LoadReport> RunLoad(const ConnectionOptions& connection, const LoadOptions& options,
                                   const std::vector<std::string>& images);

// Nearest-rank percentile (0 < p <= 100) of `values`, which it sorts.
double Percentile(std::vector<double>& values, double p);

}  // namespace veriface::client
