#pragma once
// Reporting a trained model on LFW View 2 without leakage. The 10 folds of people.txt are
// people-disjoint and fold k of pairs.txt uses only fold k's people, so for each fold k: train on the
// people of the other nine folds (fold k's people are held out by construction as well), score every
// pair with that model, choose the best-accuracy threshold on the other nine folds' pairs, and measure
// fold k's pairs at it. Reported: mean +- standard deviation over the folds, next to the source
// bundle as it is (the pass-through head) under the standard protocol on the same embeddings.
//
// Optionally a final model is then trained on every fold's people with the same settings; its
// thresholds are calibrated on the pooled out-of-fold scores (each pair scored by the fold model that
// never saw its people), and its model.json quotes the fold-protocol accuracy, never a figure
// measured on its own training people.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "trainer/training/trainer.h"

namespace veriface {

struct FoldProtocolConfig {
  TrainerConfig base;        // model, objective, optimisation, runtime; work_dir gets one folder per fold
  std::string people_file;   // View 2 people.txt
  std::string pairs_file;    // View 2 pairs.txt
  std::vector<int> folds;    // 0-based folds to run; empty: all (the summary needs all of them)
  std::string final_bundle;  // empty: no final model
};

// Runs the folds (each resumable through base.resume) and returns the results as JSON.
absl::StatusOr<nlohmann::json> RunFoldProtocol(const FoldProtocolConfig& config);

}  // namespace veriface
