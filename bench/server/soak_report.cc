// veriface-soak-report RUN_DIR [TITLE]: reads what bench/server/soak.sh recorded (rss.csv, windows.csv and
// each window's `veriface load --json` report) and writes summary.json plus soak_memory.png and
// soak_throughput.png. Memory is judged after a warm-up (the first tenth of the run, at least 2 minutes'
// worth where the run is long enough), by the least-squares slope of RSS over time and by how the mean of
// the last tenth compares with the mean of the tenth after warm-up.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "trainer/plot/chart.h"

namespace {

using nlohmann::json;

// Rows of a CSV file with a header line, as numbers.
std::vector<std::vector<double>> ReadCsv(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  std::vector<std::vector<double>> rows;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<double> row;
    for (const absl::string_view cell : absl::StrSplit(line, ',')) row.push_back(std::stod(std::string(cell)));
    rows.push_back(row);
  }
  return rows;
}

double Mean(const std::vector<double>& v, size_t from, size_t to) {
  double sum = 0;
  for (size_t i = from; i < to; ++i) sum += v[i];
  return to > from ? sum / static_cast<double>(to - from) : 0;
}

// Least-squares slope of y over x.
double Slope(const std::vector<double>& x, const std::vector<double>& y) {
  const double mx = Mean(x, 0, x.size()), my = Mean(y, 0, y.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    num += (x[i] - mx) * (y[i] - my);
    den += (x[i] - mx) * (x[i] - mx);
  }
  return den > 0 ? num / den : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: veriface-soak-report RUN_DIR [TITLE]\n";
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  const std::string title = argc > 2 ? argv[2] : "soak";

  const auto rss_rows = ReadCsv(dir / "rss.csv");
  const auto window_rows = ReadCsv(dir / "windows.csv");
  if (rss_rows.size() < 2 || window_rows.empty()) {
    std::cerr << "too little recorded in " << dir << "\n";
    return 1;
  }
  std::vector<double> t, rss_mb;
  for (const auto& r : rss_rows) {
    t.push_back(r[0] / 60.0);
    rss_mb.push_back(r[1] / 1024.0);
  }

  // Per window: calls, successes and errors by code.
  std::vector<double> wt, throughput, errors_per_s;
  int64_t calls = 0, ok = 0;
  std::map<std::string, int64_t> errors;
  std::map<std::string, std::string> examples;
  for (const auto& w : window_rows) {
    const auto index = static_cast<int>(w[0]);
    std::ifstream in(dir / absl::StrFormat("window-%04d.json", index));
    const json report = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (report.is_discarded()) {
      std::cerr << "window " << index << " has no report (the client failed): counted as an error\n";
      ++errors["NO_REPORT"];
      continue;
    }
    const double seconds = std::max(w[2] - w[1], 1e-3);
    int64_t window_errors = 0;
    for (const auto& [code, n] : report.value("errors", json::object()).items()) {
      errors[code] += n.get<int64_t>();
      window_errors += n.get<int64_t>();
    }
    for (const auto& [code, m] : report.value("error_examples", json::object()).items()) {
      examples.emplace(code, m.get<std::string>());
    }
    calls += report.value("calls", int64_t{0});
    ok += report.value("ok", int64_t{0});
    wt.push_back(w[2] / 60.0);
    throughput.push_back(report.value("throughput_per_s", 0.0));
    errors_per_s.push_back(static_cast<double>(window_errors) / seconds);
  }

  // Memory after warm-up.
  const double minutes = t.back();
  const double warmup = std::min(std::max(minutes / 10, 2.0), minutes / 2);
  const size_t from = static_cast<size_t>(std::lower_bound(t.begin(), t.end(), warmup) - t.begin());
  const size_t tenth = std::max<size_t>((t.size() - from) / 10, 1);
  const std::vector<double> tx(t.begin() + static_cast<long>(from), t.end());
  const std::vector<double> ty(rss_mb.begin() + static_cast<long>(from), rss_mb.end());
  const double slope_mb_per_hour = Slope(tx, ty) * 60;
  const double early = Mean(rss_mb, from, std::min(from + tenth, rss_mb.size()));
  const double late = Mean(rss_mb, rss_mb.size() - tenth, rss_mb.size());
  const int64_t internal = errors.count("INTERNAL") != 0 ? errors["INTERNAL"] : 0;

  json summary{{"title", title},
               {"minutes", minutes},
               {"windows", window_rows.size()},
               {"calls", calls},
               {"ok", ok},
               {"mean_throughput_per_s", Mean(throughput, 0, throughput.size())},
               {"errors", errors},
               {"error_examples", examples},
               {"internal_errors", internal},
               {"rss_mb",
                {{"start", rss_mb.front()},
                 {"max", *std::max_element(rss_mb.begin(), rss_mb.end())},
                 {"end", rss_mb.back()},
                 {"warmup_minutes", warmup},
                 {"mean_first_tenth_after_warmup", early},
                 {"mean_last_tenth", late},
                 {"slope_mb_per_hour_after_warmup", slope_mb_per_hour}}}};
  std::ofstream(dir / "summary.json") << summary.dump(2) << "\n";
  std::cout << summary.dump(2) << "\n";

  namespace plot = veriface::plot;
  plot::Chart memory;
  memory.title = "Server resident memory";
  memory.subtitle = title;
  memory.x.label = "minutes";
  memory.y.label = "RSS (MB)";
  memory.y.min = 0;
  memory.lines.push_back({"RSS", t, rss_mb, plot::PaletteColor(0)});
  memory.references.push_back({true, warmup, "warm-up ends"});
  memory.notes = {absl::StrFormat("after warm-up: %.0f MB -> %.0f MB (%+.1f MB/h)", early, late, slope_mb_per_hour),
                  absl::StrFormat("max %.0f MB", *std::max_element(rss_mb.begin(), rss_mb.end()))};
  plot::Chart load;
  load.title = "Throughput and errors per window";
  load.subtitle = title;
  load.x.label = "minutes";
  load.y.label = "calls/s";
  load.y.min = 0;
  load.lines.push_back({"successful calls/s", wt, throughput, plot::PaletteColor(0), 2, false, true});
  load.lines.push_back({"errors/s", wt, errors_per_s, plot::PaletteColor(1), 2, false, true});
  load.notes = {absl::StrFormat("%d calls, %d ok, %d INTERNAL", calls, ok, internal)};
  for (const auto& [chart, file] : {std::pair{&memory, "soak_memory.png"}, std::pair{&load, "soak_throughput.png"}}) {
    const auto written = plot::WritePng(*chart, (dir / file).string());
    if (!written.ok()) {
      std::cerr << file << ": " << written << "\n";
      return 1;
    }
  }
  return 0;
}
