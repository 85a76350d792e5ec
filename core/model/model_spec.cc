#include "core/model/model_spec.h"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/common/file_util.h"
#include "core/common/status_macros.h"
#include "core/model/test_time.h"

namespace veriface {
namespace {

using nlohmann::json;

// A JSON number as T, refused (rather than converted with undefined behaviour) when it is not a number,
// is fractional where T is an integer, or lies outside T's range.
template <typename T>
absl::StatusOr<T> NumberAs(const json& v, const std::string& name) {
  const auto refuse = [&](const char* why) {
    return absl::InvalidArgumentError(absl::StrCat("model.json: '", name, "' is ", v.dump(), ": ", why));
  };
  if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) return refuse("expected an integer");
    if (v.is_number_unsigned() ? v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max())
                               : (v.get<int64_t>() < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
                                  v.get<int64_t>() > static_cast<int64_t>(std::numeric_limits<T>::max()))) {
      return refuse("out of range");
    }
    return v.get<T>();
  } else {
    if (!v.is_number()) return refuse("expected a number");
    const double d = v.get<double>();
    if (!std::isfinite(d) || std::abs(d) > static_cast<double>(std::numeric_limits<T>::max())) {
      return refuse("out of range");
    }
    return static_cast<T>(d);
  }
}

// j[key] as T, or `fallback` when j has no such key.
template <typename T>
absl::StatusOr<T> NumberField(const json& j, const char* key, T fallback, const std::string& where) {
  if (!j.contains(key)) return fallback;
  return NumberAs<T>(j[key], absl::StrCat(where, key));
}

json ComponentToJson(const ComponentSpec& c) {
  return {{"arch", c.arch}, {"weights", c.weights}, {"params", c.params}};
}

absl::StatusOr<ComponentSpec> ComponentFromJson(const json& j, const std::string& what) {
  if (!j.is_object() || !j.contains("arch") || !j["arch"].is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("model.json: '", what, "' needs a string 'arch'"));
  }
  ComponentSpec c;
  c.arch = j["arch"].get<std::string>();
  c.weights = j.value("weights", "");
  c.params = j.value("params", json::object());
  return c;
}

// 0.7F printed as a double is 0.699999988...; store what a person wrote.
std::vector<double> RoundedThresholds(const std::array<float, 3>& t) {
  std::vector<double> out;
  for (const float v : t) out.push_back(std::round(static_cast<double>(v) * 1e6) / 1e6);
  return out;
}

std::string ModelFile(const std::string& dir) { return (std::filesystem::path(dir) / "model.json").string(); }

}  // namespace

absl::StatusOr<double> ModelSpec::DefaultThreshold() const {
  const auto it = thresholds.find(default_operating_point);
  if (it == thresholds.end()) {
    return absl::FailedPreconditionError(absl::StrCat("model ", model_id, " has no threshold for its default ",
                                                      "operating point '", default_operating_point,
                                                      "'; run `veriface-eval calibrate` on it"));
  }
  return it->second;
}

std::string ModelSpec::TestTimeSpec() const { return TtaSpec(flip_average, crops); }

json ModelSpec::ToJson() const {
  const DetectorOptions& d = detector_defaults;
  json detector_json = ComponentToJson(detector);
  detector_json["defaults"] = {{"min_face_size", d.min_face_size},
                               {"scale_factor", d.scale_factor},
                               {"max_scales", d.max_scales},
                               {"score_thresholds", RoundedThresholds(d.score_thresholds)}};
  json out = {{"format_version", kFormatVersion},
              {"model_id", model_id},
              {"description", description},
              {"detector", detector_json},
              {"backbone", ComponentToJson(backbone)},
              {"head", ComponentToJson(head)},
              {"embedding_dim", embedding_dim},
              {"similarity", "cosine"},
              {"test_time", {{"flip_average", flip_average}, {"crops", crops}}},
              {"thresholds", thresholds},
              {"default_operating_point", default_operating_point},
              {"calibration", calibration},
              {"provenance", provenance},
              {"accuracy", accuracy}};
  if (!fused_backbones.empty()) {
    json members = json::array();
    for (const ComponentSpec& c : fused_backbones) members.push_back(ComponentToJson(c));
    out["fused_backbones"] = std::move(members);
  }
  return out;
}

absl::StatusOr<ModelSpec> ModelSpec::FromJson(const json& j) {
  try {
    if (!j.is_object()) return absl::InvalidArgumentError("model.json: expected an object");
    VF_ASSIGN_OR_RETURN(const int version, NumberField(j, "format_version", 0, ""));
    if (version != kFormatVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("model.json: format_version ", version, " is not the supported ", kFormatVersion));
    }
    ModelSpec s;
    s.model_id = j.value("model_id", "");
    if (s.model_id.empty()) return absl::InvalidArgumentError("model.json: missing 'model_id'");
    s.description = j.value("description", "");
    VF_ASSIGN_OR_RETURN(s.detector, ComponentFromJson(j.value("detector", json()), "detector"));
    VF_ASSIGN_OR_RETURN(s.backbone, ComponentFromJson(j.value("backbone", json()), "backbone"));
    if (j.contains("fused_backbones")) {
      const json& members = j["fused_backbones"];
      if (!members.is_array() || members.empty()) {
        return absl::InvalidArgumentError("model.json: 'fused_backbones' must be a non-empty list of backbones");
      }
      for (size_t i = 0; i < members.size(); ++i) {
        VF_ASSIGN_OR_RETURN(ComponentSpec c, ComponentFromJson(members[i], absl::StrCat("fused_backbones[", i, "]")));
        s.fused_backbones.push_back(std::move(c));
      }
    }
    VF_ASSIGN_OR_RETURN(s.head, ComponentFromJson(j.value("head", json()), "head"));
    const json defaults = j["detector"].value("defaults", json::object());
    DetectorOptions& d = s.detector_defaults;
    const std::string in_defaults = "detector.defaults.";
    VF_ASSIGN_OR_RETURN(d.min_face_size, NumberField(defaults, "min_face_size", d.min_face_size, in_defaults));
    VF_ASSIGN_OR_RETURN(d.scale_factor, NumberField(defaults, "scale_factor", d.scale_factor, in_defaults));
    VF_ASSIGN_OR_RETURN(d.max_scales, NumberField(defaults, "max_scales", d.max_scales, in_defaults));
    if (defaults.contains("score_thresholds")) {
      const json& t = defaults["score_thresholds"];
      if (!t.is_array() || t.size() != d.score_thresholds.size()) {
        return absl::InvalidArgumentError("model.json: 'detector.defaults.score_thresholds' must be 3 numbers");
      }
      for (size_t i = 0; i < d.score_thresholds.size(); ++i) {
        VF_ASSIGN_OR_RETURN(d.score_thresholds[i],
                            NumberAs<float>(t[i], absl::StrCat(in_defaults, "score_thresholds[", i, "]")));
      }
    }
    VF_RETURN_IF_ERROR(d.Validate());
    VF_ASSIGN_OR_RETURN(s.embedding_dim, NumberField(j, "embedding_dim", s.embedding_dim, ""));
    if (j.value("similarity", "cosine") != "cosine") {
      return absl::InvalidArgumentError("model.json: only 'cosine' similarity is supported");
    }
    const json test_time = j.value("test_time", json::object());
    s.flip_average = test_time.value("flip_average", s.flip_average);
    s.crops = test_time.value("crops", s.crops);
    const auto parsed = ParseTta(s.crops);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("model.json: test_time.crops: ", parsed.status().message()));
    }
    // Mirroring has its own key; one place for it keeps the bundle unambiguous.
    if (parsed->flip) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.json: test_time.crops '", s.crops, "' names 'flip'; set test_time.flip_average instead"));
    }
    s.crops = parsed->spec;
    s.thresholds = j.value("thresholds", s.thresholds);
    s.default_operating_point = j.value("default_operating_point", s.default_operating_point);
    s.calibration = j.value("calibration", json::object());
    s.provenance = j.value("provenance", json::object());
    s.accuracy = j.value("accuracy", json::object());
    return s;
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("model.json: ", e.what()));
  }
}

absl::StatusOr<ModelSpec> ReadModelSpec(const std::string& bundle_dir) {
  VF_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(ModelFile(bundle_dir)));
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(ModelFile(bundle_dir), ": not valid JSON: ", e.what()));
  }
  return ModelSpec::FromJson(j);
}

absl::Status WriteModelSpec(const std::string& bundle_dir, const ModelSpec& spec) {
  return WriteFileAtomically(ModelFile(bundle_dir), spec.ToJson().dump(2) + "\n");
}

}  // namespace veriface
