#pragma once
// `veriface load`: a closed-loop load generator. `concurrency` threads each send one call at a time,
// until `count` calls in all or `duration_seconds` have passed, with RPCs drawn by a weighted mix, and
// the report gives throughput and latency percentiles.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/connection.h"

namespace veriface::client {

struct LoadOptions {
  std::map<std::string, int> mix{{"verify", 1}};  // "verify", "identify", "embed", "enroll" -> weight
  int concurrency = 1;
  int64_t count = 0;            // calls in all; 0: run for duration_seconds
  double duration_seconds = 0;  // used when count is 0
  int64_t warmup = 0;           // calls made (and not measured) before the run
  std::string gallery;          // the gallery Identify searches and Enroll fills; empty: the default
};

// Parses "verify=3,identify=1" (a bare name means weight 1).
absl::StatusOr<std::map<std::string, int>> ParseMix(const std::string& text);

struct LatencySummary {
  int64_t calls = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0, mean_ms = 0;
};

struct LoadReport {
  int concurrency = 0;
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
// Enroll makes a new identity of one (its largest face, at any quality) per call.
absl::StatusOr<LoadReport> RunLoad(const ConnectionOptions& connection, const LoadOptions& options,
                                   const std::vector<std::string>& images);

// Nearest-rank percentile (0 < p <= 100) of `values`, which it sorts.
double Percentile(std::vector<double>& values, double p);

}  // namespace veriface::client
